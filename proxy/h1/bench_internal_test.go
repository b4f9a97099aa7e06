package h1

import (
	"bufio"
	"bytes"
	"net/http"
	"testing"
)

// BenchmarkReadRequest: reading and parsing a webhook's request head from
// the buffer (what each request costs before the handler runs).
func BenchmarkReadRequest(b *testing.B) {
	data := []byte("POST /webhooks/referrals HTTP/1.1\r\nHost: 127.0.0.1:8090\r\nUser-Agent: Svix-Webhooks/1.44\r\nContent-Type: application/json\r\nContent-Length: 1024\r\nsvix-id: msg_2KWPBgLlAfxdpx2AI54pPJ85f4W\r\nsvix-timestamp: 1764750000\r\nsvix-signature: v1,K5oZfzN95Z9UVu1EsfQmfVNQhnkZ2pj9o9NDN/H/pI4=\r\n\r\n")
	c := &conn{srv: &Server{}, header: make(http.Header)}
	c.body.c = c
	r := bytes.NewReader(data)
	c.br = bufio.NewReaderSize(r, 4096)
	b.ReportAllocs()
	for b.Loop() {
		r.Reset(data)
		c.br.Reset(r)
		c.br.Peek(1)
		if _, err := c.readRequest(); err != nil {
			b.Fatal(err.detail)
		}
	}
}

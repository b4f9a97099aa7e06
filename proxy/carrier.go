package proxy

import (
	"net/http"
	"strings"

	"go.opentelemetry.io/otel/propagation"
)

// carrier receives the headers a propagator injects (traceparent,
// tracestate); as with http.Header.Set, they replace any header of that
// name.
type carrier struct {
	o      outbound // the request, for Get and Keys
	fields []carried
	buf    [2]carried
}

type carried struct{ name, value string }

var _ propagation.TextMapCarrier = (*carrier)(nil)

func (c *carrier) Set(key, value string) {
	key = canonicalKey(key)
	for i := range c.fields {
		if c.fields[i].name == key {
			c.fields[i].value = value
			return
		}
	}
	if c.fields == nil {
		c.fields = c.buf[:0]
	}
	c.fields = append(c.fields, carried{key, value})
}

func (c *carrier) has(name string) bool {
	if c == nil {
		return false
	}
	for _, h := range c.fields {
		if h.name == name {
			return true
		}
	}
	return false
}

// Get returns the first value of key that the app will receive.
func (c *carrier) Get(key string) string {
	key = canonicalKey(key)
	for _, h := range c.fields {
		if h.name == key {
			return h.value
		}
	}
	if key == "X-Forwarded-For" && c.o.hasIP {
		if prior := c.o.priorForwardedFor(); len(prior) > 0 {
			return strings.Join(prior, ", ") + ", " + c.o.ip
		}
		return c.o.ip
	}
	if v, ok := c.o.fixed(key); ok {
		return v
	}
	if vs := c.o.in.Header[key]; len(vs) > 0 && !c.o.dropped(key) {
		return vs[0]
	}
	return ""
}

// Keys returns the names of the headers the app will receive.
func (c *carrier) Keys() []string {
	var keys []string
	for k := range c.o.in.Header {
		if !c.o.dropped(k) && !c.has(k) {
			keys = append(keys, k)
		}
	}
	fixed := []string{"X-Forwarded-Host", "X-Forwarded-Proto", "Postern-Verified", "Postern-Event-Type", "Postern-Message-Id"}
	fixed = append(fixed, c.o.verified.names[:]...)
	if c.o.hasIP {
		fixed = append(fixed, "X-Forwarded-For")
	}
	for _, k := range fixed {
		if !c.has(k) {
			keys = append(keys, k)
		}
	}
	for _, h := range c.fields {
		keys = append(keys, h.name)
	}
	return keys
}

// canonicalKey is http.CanonicalHeaderKey without an allocation for the
// names W3C propagators use.
func canonicalKey(k string) string {
	switch k {
	case "traceparent":
		return "Traceparent"
	case "tracestate":
		return "Tracestate"
	case "baggage":
		return "Baggage"
	}
	return http.CanonicalHeaderKey(k)
}

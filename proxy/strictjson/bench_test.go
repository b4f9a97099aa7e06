package strictjson_test

import (
	"encoding/json"
	"testing"

	"github.com/postern-dev/postern/proxy/strictjson"
)

// webhookBody is a realistic REFERRAL_CREATED delivery of about 1 KiB.
const webhookBody = `{
  "eventType": "REFERRAL_CREATED",
  "eventId": "evt_2pQk7cM9xY4bN1vR8sT3wZ6aL0",
  "createdAt": "2026-11-26T10:00:00Z",
  "apiVersion": "2026-10-01",
  "livemode": true,
  "attempt": 1,
  "data": {
    "referralId": "ref_123",
    "customer_type": "INDIVIDUAL",
    "status": "CREATED",
    "programId": "prg_8f3e2d1c",
    "campaign": "autumn-2026",
    "reward": {"amount": 2500, "currency": "EUR", "type": "CREDIT", "expiresAt": null},
    "referrer": {
      "customerId": "cus_9a8b7c6d",
      "email": "ana.martins@example.com",
      "name": "Ana Martins",
      "locale": "pt-PT",
      "verified": true
    },
    "referee": {
      "customerId": "cus_1f2e3d4c",
      "email": "j\u00f6rg.m\u00fcller@example.de",
      "name": "Jörg Müller",
      "locale": "de-DE",
      "verified": false
    },
    "source": {"channel": "WEB", "ip": "203.0.113.7", "userAgent": "Mozilla/5.0 (X11; Linux x86_64)"},
    "tags": ["spring", "partner", "tier-2"],
    "metadata": {"crmId": "0065g00000AbCdE", "note": "first referral\nfrom partner portal", "score": 0.875}
  }
}
`

func webhookTree() any {
	return map[string]any{
		"eventType":  "REFERRAL_CREATED",
		"eventId":    "evt_2pQk7cM9xY4bN1vR8sT3wZ6aL0",
		"createdAt":  "2026-11-26T10:00:00Z",
		"apiVersion": "2026-10-01",
		"livemode":   true,
		"attempt":    n("1"),
		"data": map[string]any{
			"referralId":    "ref_123",
			"customer_type": "INDIVIDUAL",
			"status":        "CREATED",
			"programId":     "prg_8f3e2d1c",
			"campaign":      "autumn-2026",
			"reward":        map[string]any{"amount": n("2500"), "currency": "EUR", "type": "CREDIT", "expiresAt": nil},
			"referrer": map[string]any{
				"customerId": "cus_9a8b7c6d",
				"email":      "ana.martins@example.com",
				"name":       "Ana Martins",
				"locale":     "pt-PT",
				"verified":   true,
			},
			"referee": map[string]any{
				"customerId": "cus_1f2e3d4c",
				"email":      "jörg.müller@example.de",
				"name":       "Jörg Müller",
				"locale":     "de-DE",
				"verified":   false,
			},
			"source":   map[string]any{"channel": "WEB", "ip": "203.0.113.7", "userAgent": "Mozilla/5.0 (X11; Linux x86_64)"},
			"tags":     []any{"spring", "partner", "tier-2"},
			"metadata": map[string]any{"crmId": "0065g00000AbCdE", "note": "first referral\nfrom partner portal", "score": n("0.875")},
		},
	}
}

func BenchmarkParse(b *testing.B) {
	body := []byte(webhookBody)
	b.ReportAllocs()
	b.SetBytes(int64(len(body)))
	for b.Loop() {
		if _, err := strictjson.Parse(body); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkParseString: the value tree from a string, with no copy of it.
func BenchmarkParseString(b *testing.B) {
	b.ReportAllocs()
	b.SetBytes(int64(len(webhookBody)))
	for b.Loop() {
		if _, err := strictjson.ParseString(webhookBody); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkEncodingJSONUnmarshal(b *testing.B) {
	body := []byte(webhookBody)
	b.ReportAllocs()
	b.SetBytes(int64(len(body)))
	for b.Loop() {
		var v any
		if err := json.Unmarshal(body, &v); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkDoc parses into a reused Doc, as the webhook handler does.
func BenchmarkDoc(b *testing.B) {
	b.ReportAllocs()
	b.SetBytes(int64(len(webhookBody)))
	var d strictjson.Doc
	for b.Loop() {
		if err := d.ParseString(webhookBody); err != nil {
			b.Fatal(err)
		}
	}
}

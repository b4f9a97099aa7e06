package proxy

import (
	"encoding/json"
	"net/http"
	"strconv"
)

// Reason codes, the stable part of every error body and audit record.
const (
	ReasonMethodNotAllowed    = "method_not_allowed"
	ReasonBodyReadFailed      = "body_read_failed"
	ReasonBodyTooLarge        = "body_too_large"
	ReasonMalformedHeaders    = "malformed_headers"
	ReasonMissingHeaders      = "missing_headers"
	ReasonTimestampTooOld     = "timestamp_too_old"
	ReasonTimestampTooNew     = "timestamp_too_new"
	ReasonSignatureMismatch   = "signature_mismatch"
	ReasonDeliveryInFlight    = "delivery_in_flight"
	ReasonInvalidJSON         = "invalid_json"
	ReasonMissingEventType    = "missing_event_type"
	ReasonSchemaViolation     = "schema_violation"
	ReasonUnknownEventType    = "unknown_event_type"
	ReasonUpstreamUnavailable = "upstream_unavailable"
	ReasonUpstreamError       = "upstream_error"
	ReasonUpstreamTimeout     = "upstream_timeout"
	ReasonUpstreamGone        = "upstream_gone"
	ReasonShuttingDown        = "shutting_down"
	ReasonOverloaded          = "overloaded"
	ReasonMalformedRequest    = "malformed_request"
	ReasonHeadersTooLarge     = "headers_too_large"
)

// Error is a request postern answers itself. Detail is safe to show the
// client; Err is the cause, logged and never sent.
type Error struct {
	// Status is the HTTP status code.
	Status int
	// Reason is the reason code (one of the Reason constants).
	Reason string
	// Detail explains the rejection to the sender; it never holds a secret,
	// an expected signature or an internal address.
	Detail string
	// RetryAfter, when positive, is sent as the Retry-After header in seconds.
	RetryAfter int
	// Err is the underlying cause, for the log only.
	Err error
}

func (e *Error) Error() string {
	if e.Err != nil {
		return e.Reason + ": " + e.Err.Error()
	}
	return e.Reason + ": " + e.Detail
}

func (e *Error) Unwrap() error { return e.Err }

// problem is the RFC 9457 body, plus postern's reason code.
type problem struct {
	Type   string `json:"type"`
	Title  string `json:"title"`
	Status int    `json:"status"`
	Detail string `json:"detail,omitempty"`
	Reason string `json:"reason"`
}

// writeProblem writes e as application/problem+json. It is the only place
// that writes an error response.
func writeProblem(w http.ResponseWriter, e *Error) {
	body, _ := json.Marshal(problem{
		Type:   "urn:postern:reason:" + e.Reason,
		Title:  http.StatusText(e.Status),
		Status: e.Status,
		Detail: e.Detail,
		Reason: e.Reason,
	})
	h := w.Header()
	h.Set("Content-Type", "application/problem+json")
	h.Set("Content-Length", strconv.Itoa(len(body)))
	h.Set("Cache-Control", "no-store")
	if e.Status == http.StatusMethodNotAllowed {
		h.Set("Allow", http.MethodPost)
	}
	if e.RetryAfter > 0 {
		h.Set("Retry-After", strconv.Itoa(e.RetryAfter))
	}
	w.WriteHeader(e.Status)
	w.Write(body)
}

// requestErrorBody is the problem body of a request the HTTP server refuses
// before the handler sees it: malformed or ambiguous framing, a bad request
// line or header, or headers over MaxHeaderBytes.
func requestErrorBody(status int, detail string) (string, []byte) {
	reason := refusalReason(status)
	body, _ := json.Marshal(problem{
		Type:   "urn:postern:reason:" + reason,
		Title:  http.StatusText(status),
		Status: status,
		Detail: detail,
		Reason: reason,
	})
	return "application/problem+json", body
}

// refusalReason is the reason code of a request the HTTP server refuses
// with status.
func refusalReason(status int) string {
	if status == http.StatusRequestHeaderFieldsTooLarge {
		return ReasonHeadersTooLarge
	}
	return ReasonMalformedRequest
}

// writeJSON writes a small fixed 200 body postern answers itself.
func writeJSON(w http.ResponseWriter, body string) {
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(http.StatusOK)
	w.Write([]byte(body))
}

// Package proxy is postern's webhook handler: it verifies the Svix / Standard
// Webhooks signature of each request, suppresses duplicates by message id,
// validates the JSON body against its event type's schema, and forwards only
// authentic, valid events to the application.
//
// The checks run in a fixed order, written once in Handler.serve:
//
//	method -> body size -> signature headers (duplicates, presence, format)
//	-> timestamp window -> HMAC -> dedupe -> strict JSON -> event type
//	-> schema -> forward
//
// Every rejection is an *Error carrying a status, a reason code and a
// client-safe detail, written by one function as application/problem+json.
package proxy

// Package schema holds the JSON Schemas postern validates event payloads
// against, one per event type, compiled once at startup, and finds an event's
// type in its body with an RFC 6901 JSON pointer.
package schema

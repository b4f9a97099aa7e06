// Package schema holds the JSON Schemas postern validates event payloads
// against, one per event type, compiled once at startup, and finds an event's
// type in its body with an RFC 6901 JSON pointer.
//
// Validation has a fast path: each schema that only uses keywords the fast
// path implements exactly is also compiled into a small validator over a
// strictjson.Doc, which builds no value tree. It may only answer "certainly
// valid"; anything else goes to github.com/santhosh-tekuri/jsonschema/v6,
// on the document's value tree, which words every violation.
package schema

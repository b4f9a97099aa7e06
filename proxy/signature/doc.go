// Package signature checks Svix / Standard Webhooks signature headers.
//
// postern checks presence, duplicates, format and the timestamp window itself,
// each with its own sentinel error, because the Svix SDK's errors are unexported
// and its tolerance is fixed. The HMAC is computed exactly as the official SDK
// (github.com/svix/svix-webhooks/go) computes it, with a pooled HMAC state per
// configured key so that a check allocates nothing (the SDK's costs 23
// allocations and a copy of the body); any configured key may match, so
// receiver-side key rotation works. The SDK is the oracle of the tests: Sign
// is the SDK's, and FuzzVerify checks that Verify agrees with the SDK's
// VerifyIgnoringTimestamp on every input.
package signature

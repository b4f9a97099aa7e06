// Package signature checks Svix / Standard Webhooks signature headers.
//
// postern checks presence, duplicates, format and the timestamp window itself,
// each with its own sentinel error, because the Svix SDK's errors are unexported
// and its tolerance is fixed. The HMAC itself is checked by the official SDK
// (github.com/svix/svix-webhooks/go), one verifier per configured key, so that
// receiver-side key rotation works: any configured key may match.
package signature

// Package demo runs postern against an embedded example app with a generated
// secret, sends signed, forged, tampered and invalid events, prints what
// happened to each, and keeps serving for manual tries.
package demo

// Package charttest holds the tests of the Helm charts under charts/: they
// render charts/postern (and the example parent chart in charts/examples) with
// the helm binary and check what matters on the typed Kubernetes objects.
//
// It is a module of its own so that the Kubernetes API types it decodes into
// stay out of postern's go.mod. .ci/deploy runs it after installing helm and
// after kubeconform has validated the same renderings against the Kubernetes
// OpenAPI schemas (made by ./kubeschema).
package charttest

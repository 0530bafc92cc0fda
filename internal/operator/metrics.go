package operator

import (
	"crypto/tls"

	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	"github.com/meshcloud/meshstack-operator/internal/metricsauth"
)

// metricsServerOptions serves /metrics over HTTPS to callers that may get the
// non-resource URL /metrics, or, with --metrics-secure=false, as plain HTTP
// to anyone.
func metricsServerOptions(o Options) metricsserver.Options {
	opts := metricsserver.Options{BindAddress: o.MetricsBindAddress}
	if !o.MetricsSecure {
		return opts
	}
	opts.SecureServing = true
	opts.FilterProvider = metricsauth.Filter
	// Without a certificate in the directory, controller-runtime serves a
	// self-signed one.
	opts.CertDir = o.MetricsCertDir
	// HTTP/2 stays off, as kubebuilder does, because of the HTTP/2 Stream
	// Cancellation and Rapid Reset vulnerabilities (CVE-2023-44487,
	// CVE-2023-39325).
	opts.TLSOpts = []func(*tls.Config){func(c *tls.Config) { c.NextProtos = []string{"http/1.1"} }}
	return opts
}

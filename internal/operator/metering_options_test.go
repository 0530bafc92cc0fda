package operator

import (
	"flag"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func TestMeteringFlags(t *testing.T) {
	defaults := DefaultOptions()
	if err := defaults.Validate(); err != nil {
		t.Fatalf("defaults do not validate: %v", err)
	}
	want := []any{time.Minute, time.Hour, int64(500), "-", "meshstack-metering", 8, []string{"pods"}, 1000, "", "project", "include"}
	got := []any{defaults.MeteringInterval, defaults.MeteringWindow, defaults.MeteringPageSize, defaults.MeteringOutput,
		defaults.MeteringCheckpoint, defaults.MeteringCheckpointParts, defaults.MeteringResources, defaults.MeteringHTTP.BatchSize,
		defaults.MeteringCluster, defaults.MeteringAttribution, defaults.MeteringUnmanagedNamespaces}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("metering defaults (-want +got):\n%s", diff)
	}

	o := DefaultOptions()
	fs := flag.NewFlagSet("test", flag.ContinueOnError)
	o.BindFlags(fs)
	if err := fs.Parse([]string{"--metering-interval=30s", "--metering-window=15m",
		"--metering-page-size=100", "--metering-output=https://billing.example.com/usage",
		"--metering-checkpoint=", "--metering-checkpoint-parts=2", "--metering-resources=pods,persistentvolumeclaims",
		"--metering-http-batch-size=50", "--metering-http-bearer-token-file=/var/run/secrets/tokens/billing",
		"--metering-http-ca-file=/etc/billing/ca.crt", "--metering-http-client-cert-file=/etc/billing/tls.crt",
		"--metering-http-client-key-file=/etc/billing/tls.key", "--metering-cluster=eu-1",
		"--metering-attribution=namespace-name", "--metering-unmanaged-namespaces=exclude"}); err != nil {
		t.Fatal(err)
	}
	want = []any{30 * time.Second, 15 * time.Minute, int64(100), "https://billing.example.com/usage", "", 2,
		[]string{"pods", "persistentvolumeclaims"}, 50, "/var/run/secrets/tokens/billing", "/etc/billing/ca.crt", "/etc/billing/tls.crt", "/etc/billing/tls.key",
		"eu-1", "namespace-name", "exclude"}
	got = []any{o.MeteringInterval, o.MeteringWindow, o.MeteringPageSize, o.MeteringOutput, o.MeteringCheckpoint, o.MeteringCheckpointParts,
		o.MeteringResources, o.MeteringHTTP.BatchSize, o.MeteringHTTP.BearerTokenFile, o.MeteringHTTP.CAFile,
		o.MeteringHTTP.ClientCertFile, o.MeteringHTTP.ClientKeyFile, o.MeteringCluster, o.MeteringAttribution, o.MeteringUnmanagedNamespaces}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("metering flags (-want +got):\n%s", diff)
	}

	for _, tt := range []struct {
		name    string
		mutate  func(*Options)
		wantErr string
	}{
		{"zero interval", func(o *Options) { o.MeteringInterval = 0 }, "--metering-interval"},
		{"window shorter than the interval", func(o *Options) { o.MeteringWindow = 30 * time.Second }, "at least --metering-interval"},
		{"window not dividing a day", func(o *Options) { o.MeteringWindow = 7 * time.Minute }, "divides 24h"},
		{"zero page size", func(o *Options) { o.MeteringPageSize = 0 }, "--metering-page-size"},
		{"no pods", func(o *Options) { o.MeteringResources = []string{"persistentvolumeclaims"} }, "must include pods"},
		{"unknown resource", func(o *Options) { o.MeteringResources = []string{"pods", "secrets"} }, `unknown resource "secrets"`},
		{"no checkpoint part", func(o *Options) { o.MeteringCheckpointParts = 0 }, "--metering-checkpoint-parts"},
		{"zero batch", func(o *Options) { o.MeteringHTTP.BatchSize = 0 }, "--metering-http-batch-size"},
		{"cluster not a DNS label", func(o *Options) { o.MeteringCluster = "EU_1" }, "--metering-cluster"},
		{"cluster with a slash", func(o *Options) { o.MeteringCluster = "eu/1" }, "--metering-cluster"},
		{"unknown attribution", func(o *Options) { o.MeteringAttribution = "labels" }, "--metering-attribution"},
		{"unknown unmanaged namespaces", func(o *Options) { o.MeteringUnmanagedNamespaces = "drop" }, "--metering-unmanaged-namespaces"},
		{"plain http to a remote host", func(o *Options) { o.MeteringOutput = "http://billing.example.com/usage" }, "--metering-output"},
	} {
		o := DefaultOptions()
		tt.mutate(&o)
		if err := o.Validate(); err == nil || !strings.Contains(err.Error(), tt.wantErr) {
			t.Errorf("%s: Validate() = %v, want an error about %q", tt.name, err, tt.wantErr)
		}
	}
}

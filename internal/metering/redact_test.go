package metering

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/meshcloud/meshstack-operator/internal/metering/sink"
	"github.com/meshcloud/meshstack-operator/internal/metering/usage"
)

// secrets are the parts of the output URLs below that must never be
// printed.
var secrets = []string{"alice-the-user", "s3cr3t-pass", "hunter2-token", "frag-secret", "bearer-in-user"}

func expectNoSecrets(t *testing.T, what, text string) {
	t.Helper()
	for _, s := range secrets {
		if strings.Contains(text, s) {
			t.Errorf("%s holds the secret %q: %s", what, s, text)
		}
	}
}

// No log line and no error the meter prints quotes the credentials of an
// HTTP output: not at start, not when a request fails, not when the URL
// is refused.
func TestMeteringOutputCredentialsAreNeverPrinted(t *testing.T) {
	const output = "https://alice-the-user:s3cr3t-pass@127.0.0.1:1/usage?token=hunter2-token#frag-secret"
	s := newScenario(t, output)
	m := s.meter()
	m.HTTP = sink.HTTPOptions{InitialBackoff: time.Millisecond, MaxBackoff: 5 * time.Millisecond, RequestTimeout: time.Second}
	r, err := m.open(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	for ; !s.clock.Now().After(t0.Add(time.Hour + 30*time.Second)); s.clock.Step(testInterval) {
		s.passOnce(r) // without delivering, which would retry forever
	}
	// Nothing listens on port 1: every request fails with a *url.Error.
	ctx, cancel := context.WithCancel(context.Background())
	w := r.pending[0]
	done := make(chan error, 1)
	go func() { done <- r.out.Deliver(ctx, usage.WindowRecords(r.Cluster, w.Start, w.End, w.Usage)) }()
	waitFor(t, "failed deliveries", func() bool { return s.logs.Count("Delivering metering records failed") >= 3 })
	cancel()
	if err := <-done; err != nil {
		expectNoSecrets(t, "Deliver's error", err.Error())
	}
	s.stop(r)
	if !s.logs.Contains(`"url"="https://xxxxx@127.0.0.1:1/usage?xxxxx#xxxxx"`) || !s.logs.Contains("connection refused") {
		t.Errorf("the log does not show the redacted URL and the error: %v", s.logs.Lines())
	}
	for _, line := range s.logs.Lines() {
		expectNoSecrets(t, "log line", line)
	}

	for _, bad := range []string{
		"http://alice-the-user:s3cr3t-pass@billing.example.com/?token=hunter2-token", // plain http to another host
		"ftp://alice-the-user:s3cr3t-pass@billing.example.com/?token=hunter2-token",
		"https://alice-the-user:s3cr3t-pass@/usage?token=hunter2-token",
		"https://alice-the-user:s3cr3t-pass@bad host/?token=hunter2-token",
	} {
		err := ValidateSettings(time.Minute, time.Hour, 500, bad)
		if err == nil {
			t.Errorf("ValidateSettings accepted %q", bad)
			continue
		}
		expectNoSecrets(t, "the error for "+sink.RedactOutput(bad), err.Error())
	}
}

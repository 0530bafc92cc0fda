package metering

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
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

func TestRedactOutput(t *testing.T) {
	for in, want := range map[string]string{
		"https://alice-the-user:s3cr3t-pass@billing.example.com/usage?token=hunter2-token#frag-secret": "https://xxxxx@billing.example.com/usage?xxxxx#xxxxx",
		"https://bearer-in-user@billing.example.com/usage":                                             "https://xxxxx@billing.example.com/usage",
		"https://billing.example.com/usage":                                                            "https://billing.example.com/usage",
		"ftp://alice-the-user:s3cr3t-pass@host/":                                                       "ftp://xxxxx@host/",
		"https://alice-the-user:s3cr3t-pass@bad host/?%zz":                                             "(a --metering-output URL that does not parse)",
		"/var/lib/metering/usage.jsonl":                                                                "/var/lib/metering/usage.jsonl",
		"-":                                                                                            "-",
	} {
		if diff := cmp.Diff(want, RedactOutput(in)); diff != "" {
			t.Errorf("RedactOutput(%q) (-want +got):\n%s", in, diff)
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
	m.HTTP = HTTPSinkOptions{InitialBackoff: time.Millisecond, MaxBackoff: 5 * time.Millisecond, RequestTimeout: time.Second}
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
	go func() { done <- r.out.Deliver(ctx, WindowRecords(r.Cluster, w.Start, w.End, w.Usage)) }()
	waitFor(t, "failed deliveries", func() bool { return s.logs.count("Delivering metering records failed") >= 3 })
	cancel()
	if err := <-done; err != nil {
		expectNoSecrets(t, "Deliver's error", err.Error())
	}
	s.stop(r)
	if !s.logs.contains(`"url"="https://xxxxx@127.0.0.1:1/usage?xxxxx#xxxxx"`) || !s.logs.contains("connection refused") {
		t.Errorf("the log does not show the redacted URL and the error: %v", s.logs.lines)
	}
	for _, line := range s.logs.lines {
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
		expectNoSecrets(t, "the error for "+RedactOutput(bad), err.Error())
	}
}

package operator

import (
	"flag"
	"strings"
	"testing"
	"time"
)

func TestLeaderElectionFlags(t *testing.T) {
	// controller-runtime's defaults (pkg/manager: defaultLeaseDuration,
	// defaultRenewDeadline, defaultRetryPeriod).
	defaults := DefaultOptions()
	if defaults.LeaderElectionLeaseDuration != 15*time.Second || defaults.LeaderElectionRenewDeadline != 10*time.Second ||
		defaults.LeaderElectionRetryPeriod != 2*time.Second {
		t.Errorf("defaults: lease %s, renew %s, retry %s; want controller-runtime's 15s, 10s, 2s",
			defaults.LeaderElectionLeaseDuration, defaults.LeaderElectionRenewDeadline, defaults.LeaderElectionRetryPeriod)
	}
	if err := defaults.Validate(); err != nil {
		t.Fatalf("defaults do not validate: %v", err)
	}

	o := DefaultOptions()
	fs := flag.NewFlagSet("test", flag.ContinueOnError)
	o.BindFlags(fs)
	if err := fs.Parse([]string{"--leader-election-lease-duration=30s", "--leader-election-renew-deadline=20s",
		"--leader-election-retry-period=4s"}); err != nil {
		t.Fatal(err)
	}
	if o.LeaderElectionLeaseDuration != 30*time.Second || o.LeaderElectionRenewDeadline != 20*time.Second || o.LeaderElectionRetryPeriod != 4*time.Second {
		t.Errorf("flags not applied: lease %s, renew %s, retry %s", o.LeaderElectionLeaseDuration, o.LeaderElectionRenewDeadline, o.LeaderElectionRetryPeriod)
	}
	if err := o.Validate(); err != nil {
		t.Errorf("valid timings rejected: %v", err)
	}

	for _, tt := range []struct {
		name                string
		lease, renew, retry time.Duration
		wantErr             string
	}{
		{"renew deadline equal to the lease", 10 * time.Second, 10 * time.Second, 2 * time.Second, "--leader-election-renew-deadline (10s) must be less than --leader-election-lease-duration (10s)"},
		{"renew deadline above the lease", 5 * time.Second, 10 * time.Second, 2 * time.Second, "must be less than --leader-election-lease-duration"},
		{"retry period equal to the renew deadline", 15 * time.Second, 10 * time.Second, 10 * time.Second, "must be more than 1.2 times --leader-election-retry-period"},
		{"retry period within the jitter of the renew deadline", 15 * time.Second, 10 * time.Second, 9 * time.Second, "must be more than 1.2 times"},
		{"zero retry period", 15 * time.Second, 10 * time.Second, 0, "--leader-election-retry-period must be positive"},
		{"zero lease", 0, 0, 0, "--leader-election-lease-duration must be a whole number of seconds"},
		{"fractional lease", 1500 * time.Millisecond, time.Second, 100 * time.Millisecond, "whole number of seconds"},
	} {
		o := DefaultOptions()
		o.LeaderElectionLeaseDuration, o.LeaderElectionRenewDeadline, o.LeaderElectionRetryPeriod = tt.lease, tt.renew, tt.retry
		if err := o.Validate(); err == nil || !strings.Contains(err.Error(), tt.wantErr) {
			t.Errorf("%s: Validate() = %v, want an error containing %q", tt.name, err, tt.wantErr)
		}
	}
	// The shortest valid timings pass.
	o = DefaultOptions()
	o.LeaderElectionLeaseDuration, o.LeaderElectionRenewDeadline, o.LeaderElectionRetryPeriod = time.Second, 500*time.Millisecond, 400*time.Millisecond
	if err := o.Validate(); err != nil {
		t.Errorf("lease 1s, renew 500ms, retry 400ms: %v", err)
	}
}

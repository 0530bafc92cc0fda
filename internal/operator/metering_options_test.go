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
	want := []any{time.Minute, time.Hour, int64(500), "-"}
	got := []any{defaults.MeteringInterval, defaults.MeteringWindow, defaults.MeteringPageSize, defaults.MeteringOutput}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("metering defaults (-want +got):\n%s", diff)
	}

	o := DefaultOptions()
	fs := flag.NewFlagSet("test", flag.ContinueOnError)
	o.BindFlags(fs)
	if err := fs.Parse([]string{"--metering-interval=30s", "--metering-window=15m",
		"--metering-page-size=100", "--metering-output=/var/lib/metering/usage.jsonl"}); err != nil {
		t.Fatal(err)
	}
	want = []any{30 * time.Second, 15 * time.Minute, int64(100), "/var/lib/metering/usage.jsonl"}
	got = []any{o.MeteringInterval, o.MeteringWindow, o.MeteringPageSize, o.MeteringOutput}
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
	} {
		o := DefaultOptions()
		tt.mutate(&o)
		if err := o.Validate(); err == nil || !strings.Contains(err.Error(), tt.wantErr) {
			t.Errorf("%s: Validate() = %v, want an error about %q", tt.name, err, tt.wantErr)
		}
	}
}

package operator

import (
	"flag"
	"strings"
	"testing"
)

func TestDefaultLandingZoneFlag(t *testing.T) {
	if got := DefaultOptions().DefaultLandingZone; got != "" {
		t.Errorf("--default-landing-zone defaults to %q; want empty (no baseline, as before landing zones)", got)
	}
	for _, tt := range []struct{ arg, wantErr string }{
		{arg: "standard"},
		{arg: "tier-1.example"},
		{arg: "Standard", wantErr: `--default-landing-zone "Standard" is not a MeshLandingZone name`},
	} {
		o := DefaultOptions()
		fs := flag.NewFlagSet("test", flag.ContinueOnError)
		o.BindFlags(fs)
		if err := fs.Parse([]string{"--default-landing-zone=" + tt.arg}); err != nil {
			t.Fatal(err)
		}
		err := o.Validate()
		if tt.wantErr == "" {
			if err != nil || o.DefaultLandingZone != tt.arg {
				t.Errorf("--default-landing-zone=%s: %q, %v", tt.arg, o.DefaultLandingZone, err)
			}
			continue
		}
		if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
			t.Errorf("--default-landing-zone=%s: error %v, want %q", tt.arg, err, tt.wantErr)
		}
	}
}

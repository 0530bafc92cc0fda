package operator

import (
	"flag"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestParseComponents(t *testing.T) {
	tests := []struct {
		in      string
		want    []string
		wantErr string
	}{
		{in: "replicator", want: []string{"replicator"}},
		{in: "metering", want: []string{"metering"}},
		{in: "replicator, metering,replicator", want: []string{"replicator", "metering"}},
		{in: "billing", wantErr: `unknown component "billing"`},
		{in: " , ", wantErr: "no component selected"},
	}
	for _, tt := range tests {
		got, err := ParseComponents(tt.in)
		if tt.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("ParseComponents(%q) error = %v, want %q", tt.in, err, tt.wantErr)
			}
			continue
		}
		if err != nil {
			t.Errorf("ParseComponents(%q): %v", tt.in, err)
		}
		if diff := cmp.Diff(tt.want, got); diff != "" {
			t.Errorf("ParseComponents(%q) mismatch (-want +got):\n%s", tt.in, diff)
		}
	}
}

func TestFlags(t *testing.T) {
	defaults := DefaultOptions()
	if diff := cmp.Diff(AllComponents, defaults.Components); diff != "" {
		t.Errorf("both components run by default (-want +got):\n%s", diff)
	}
	// No client-side limit by default (API Priority and Fairness protects
	// the API server), and parallel workers.
	if defaults.KubeAPIQPS >= 0 || defaults.MaxConcurrentReconciles < 2 {
		t.Errorf("defaults throttle thousands of projects: qps %v, workers %d", defaults.KubeAPIQPS, defaults.MaxConcurrentReconciles)
	}

	o := DefaultOptions()
	fs := flag.NewFlagSet("test", flag.ContinueOnError)
	o.BindFlags(fs)
	err := fs.Parse([]string{
		"--components=replicator", "--role-mapping=admin=admin,auditor=my-custom-role",
		"--oidc-username-prefix=oidc:", "--oidc-groups-prefix=g:", "--kube-api-qps=50", "--kube-api-burst=60",
		"--max-concurrent-reconciles=3",
	})
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]string{"replicator"}, o.Components); diff != "" {
		t.Errorf("components (-want +got):\n%s", diff)
	}
	if got := o.RoleMapping.String(); got != "admin=admin,auditor=my-custom-role" {
		t.Errorf("role mapping = %q", got)
	}
	if o.UsernamePrefix != "oidc:" || o.GroupsPrefix != "g:" || o.KubeAPIQPS != 50 || o.KubeAPIBurst != 60 || o.MaxConcurrentReconciles != 3 {
		t.Errorf("flags not applied: %+v", o)
	}

	bad := DefaultOptions()
	fs = flag.NewFlagSet("test", flag.ContinueOnError)
	fs.SetOutput(new(strings.Builder))
	bad.BindFlags(fs)
	if err := fs.Parse([]string{"--role-mapping=admin"}); err == nil {
		t.Error("a malformed --role-mapping must fail flag parsing")
	}

	for _, name := range []string{"--oidc-username-prefix", "--oidc-groups-prefix"} {
		o := DefaultOptions()
		fs = flag.NewFlagSet("test", flag.ContinueOnError)
		o.BindFlags(fs)
		if err := fs.Parse([]string{name + "=system:"}); err != nil {
			t.Fatal(err)
		}
		if err := o.Validate(); err == nil || !strings.Contains(err.Error(), name+` "system:"`) {
			t.Errorf("Validate with %s=system: = %v, want a refusal", name, err)
		}
	}
}

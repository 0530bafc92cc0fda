package sink

import (
	"testing"

	"github.com/google/go-cmp/cmp"
)

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

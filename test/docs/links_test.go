package docs

import (
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

const root = "../.."

func TestAnchor(t *testing.T) {
	tests := []struct{ heading, want string }{
		{"Install with Helm", "install-with-helm"},
		{"Cluster tests (real node)", "cluster-tests-real-node"},
		{"Upgrading from a release without `status.namespaceUID`", "upgrading-from-a-release-without-statusnamespaceuid"},
		{"Landing zones: RBAC, values and flags", "landing-zones-rbac-values-and-flags"},
		{"MeshstackMeteringStale", "meshstackmeteringstale"},
		{"The operator at scale: `make bench-scale`", "the-operator-at-scale-make-bench-scale"},
		{"snake_case and-dash", "snake_case-and-dash"},
	}
	for _, tt := range tests {
		if got := Anchor(tt.heading); got != tt.want {
			t.Errorf("Anchor(%q) = %q, want %q", tt.heading, got, tt.want)
		}
	}
}

func TestLinksSkipsCode(t *testing.T) {
	md := "[a](a.md) `[x](y)` and [b](b.md#c)\n```\n[in](fence.md)\n```\n"
	if diff := cmp.Diff([]string{"a.md", "b.md#c"}, Links(md)); diff != "" {
		t.Errorf("Links (-want +got):\n%s", diff)
	}
}

func TestAnchors(t *testing.T) {
	md := "# Title\n\n## Status\n\n```sh\n# not a heading\n```\n\n## Status\n\n<a id=\"old-name\"></a>\n"
	got := Anchors(md)
	want := map[string]bool{"title": true, "status": true, "status-1": true, "old-name": true}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("Anchors (-want +got):\n%s", diff)
	}
}

// TestCheckLinkFixture proves the checker fails on broken links.
func TestCheckLinkFixture(t *testing.T) {
	dir := t.TempDir()
	write := func(name, text string) {
		t.Helper()
		if err := os.MkdirAll(filepath.Dir(filepath.Join(dir, name)), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, name), []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("README.md", "# Top\n")
	write("docs/a.md", "# A\n\n## Part one\n")
	tests := []struct {
		link   string
		broken bool
	}{
		{"../README.md", false},
		{"../README.md#top", false},
		{"#part-one", false},
		{"#part-two", true},
		{"missing.md", true},
		{"a.md#nowhere", true},
		{"https://example.com/x.md#y", false},
		{repoBlob + "docs/a.md#part-one", false},
		{repoBlob + "docs/b.md", true},
		{repoBlob + "README.md#gone", true},
	}
	for _, tt := range tests {
		if got := CheckLink(dir, "docs/a.md", tt.link); (got != "") != tt.broken {
			t.Errorf("CheckLink(%q) = %q, want broken=%v", tt.link, got, tt.broken)
		}
	}
}

func markdownFiles(t *testing.T) []string {
	t.Helper()
	files := []string{"README.md", "CONTRIBUTING.md",
		"config/helm/meshstack-operator/README.md", "config/helm/meshstack-operator/templates/NOTES.txt"}
	err := filepath.WalkDir(filepath.Join(root, "docs"), func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !d.IsDir() && strings.HasSuffix(path, ".md") {
			rel, err := filepath.Rel(root, path)
			if err != nil {
				return err
			}
			files = append(files, filepath.ToSlash(rel))
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	sort.Strings(files[4:])
	return files
}

// TestLinks: every relative link in the docs, and every link into this
// repository on GitHub, names a file that exists and an anchor in it.
func TestLinks(t *testing.T) {
	checked := 0
	for _, f := range markdownFiles(t) {
		data, err := os.ReadFile(filepath.Join(root, f))
		if err != nil {
			t.Fatal(err)
		}
		for _, link := range Links(string(data)) {
			checked++
			if msg := CheckLink(root, f, link); msg != "" {
				t.Errorf("%s: %s", f, msg)
			}
		}
	}
	if checked < 50 {
		t.Errorf("checked only %d links; is the walk finding the docs?", checked)
	}
}

var runbookURLRE = regexp.MustCompile(`(?m)^\s*runbookUrl:\s*(\S+)\s*$`)

// TestRunbookURLs: every alert of the PrometheusRule has a runbook page where
// its runbook_url points by default.
func TestRunbookURLs(t *testing.T) {
	values, err := os.ReadFile(filepath.Join(root, "config/helm/meshstack-operator/values.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	m := runbookURLRE.FindSubmatch(values)
	if m == nil {
		t.Fatal("no prometheusRule.runbookUrl in values.yaml")
	}
	base := string(m[1])
	rules, err := os.ReadFile(filepath.Join(root, "config/helm/meshstack-operator/templates/prometheusrule.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	alerts := regexp.MustCompile(`alert"?\s*[:"]\s*"?(Meshstack\w+)`).FindAllSubmatch(rules, -1)
	if len(alerts) < 6 {
		t.Fatalf("found %d alerts in the PrometheusRule template, want at least 6", len(alerts))
	}
	for _, a := range alerts {
		url := runbookURL(base, string(a[1]))
		if msg := CheckLink(root, "README.md", url); msg != "" {
			t.Errorf("alert %s: runbook_url %s", a[1], msg)
		}
	}
}

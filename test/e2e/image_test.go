package e2e

import (
	"debug/elf"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"
	"testing"

	"github.com/meshcloud/meshstack-operator/test/framework"
)

// TestDockerfile checks the image recipe without a Docker engine: a
// multi-stage build whose binary is static and runs as non-root on a
// distroless base. It runs the Dockerfile's own `go build` line and checks
// that the result is a static executable, and that the build context
// copies every package of the module the binary needs.
func TestDockerfile(t *testing.T) {
	root := framework.RepoRoot()
	data, err := os.ReadFile(filepath.Join(root, "Dockerfile"))
	if err != nil {
		t.Fatal(err)
	}
	dockerfile := string(data)

	froms := regexp.MustCompile(`(?m)^FROM\s+(\S+)(?:\s+AS\s+(\S+))?`).FindAllStringSubmatch(dockerfile, -1)
	if len(froms) < 2 {
		t.Fatalf("want a multi-stage build, got FROM lines %q", froms)
	}
	if final := froms[len(froms)-1][1]; !strings.HasPrefix(final, "gcr.io/distroless/static") || !strings.HasSuffix(final, ":nonroot") {
		t.Errorf("final stage FROM %s; want gcr.io/distroless/static:nonroot", final)
	}
	user := regexp.MustCompile(`(?m)^USER\s+(\S+)`).FindAllStringSubmatch(dockerfile, -1)
	if len(user) == 0 || strings.HasPrefix(user[len(user)-1][1], "0") || strings.HasPrefix(user[len(user)-1][1], "root") {
		t.Errorf("the image must run as a non-root USER, got %q", user)
	}
	if !regexp.MustCompile(`(?m)^COPY --from=` + regexp.QuoteMeta(froms[0][2]) + `\s`).MatchString(dockerfile) {
		t.Errorf("the final stage copies nothing from the %s stage", froms[0][2])
	}

	// The build line, run as the builder stage runs it (the context is the
	// repo root), with the binary written to a temporary directory.
	build := regexp.MustCompile(`(?m)^RUN\s+(.*\bgo build\b.*)$`).FindStringSubmatch(dockerfile)
	if build == nil {
		t.Fatal("no RUN ... go build line in the Dockerfile")
	}
	if !strings.Contains(build[1], "CGO_ENABLED=0") {
		t.Errorf("the build line %q does not set CGO_ENABLED=0", build[1])
	}
	out := regexp.MustCompile(`-o\s+(\S+)`).FindStringSubmatch(build[1])
	if out == nil {
		t.Fatalf("the build line %q names no -o output", build[1])
	}
	bin := filepath.Join(t.TempDir(), "meshstack-operator")
	line := strings.Replace(build[1], out[0], "-o "+bin, 1)
	cmd := exec.Command("bash", "-c", line)
	cmd.Dir = root
	cmd.Env = append(os.Environ(), "TARGETOS=linux", "TARGETARCH="+runtime.GOARCH)
	if output, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("%s: %v\n%s", line, err, output)
	}
	f, err := elf.Open(bin)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP || p.Type == elf.PT_DYNAMIC {
			t.Errorf("the binary is dynamically linked (program header %s); distroless/static has no libc", p.Type)
		}
	}

	// Every package of this module that the binary links must be in a
	// directory the Dockerfile copies into the build stage.
	copied := regexp.MustCompile(`(?m)^COPY\s+(\S+/)\s+\S+`).FindAllStringSubmatch(dockerfile, -1)
	list := exec.Command("go", "list", "-deps", "-f", "{{if not .Standard}}{{.Dir}}{{end}}", "./cmd")
	list.Dir = root
	deps, err := list.Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	for _, dir := range strings.Fields(string(deps)) {
		rel, err := filepath.Rel(root, dir)
		if err != nil || strings.HasPrefix(rel, "..") {
			continue // a dependency from the module cache
		}
		covered := false
		for _, c := range copied {
			if strings.HasPrefix(rel+"/", c[1]) {
				covered = true
			}
		}
		if !covered {
			t.Errorf("the binary needs %s, which the Dockerfile does not COPY into the build stage", rel)
		}
	}
}

package main

import (
	"archive/tar"
	"bytes"
	"debug/elf"
	"encoding/json"
	"errors"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/v1/tarball"
)

// TestImageMatchesDockerfile keeps the image `make image` builds equal to
// the Dockerfile's in what matters to the chart and to users: the user
// (the chart's runAsNonRoot needs a numeric non-root one), the entrypoint
// and working directory of the final stage, and a static binary at the
// entrypoint (there is no libc in either image). It also checks that the
// user has a passwd entry, as distroless' nonroot has.
func TestImageMatchesDockerfile(t *testing.T) {
	root, err := repoRoot()
	if err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(filepath.Join(root, "Dockerfile"))
	if err != nil {
		t.Fatal(err)
	}
	final := string(data)
	if i := strings.LastIndex(final, "\nFROM "); i >= 0 {
		final = final[i:]
	}
	last := func(instruction string) string {
		m := regexp.MustCompile(`(?m)^`+instruction+`\s+(.+)$`).FindAllStringSubmatch(final, -1)
		if len(m) == 0 {
			return ""
		}
		return strings.TrimSpace(m[len(m)-1][1])
	}
	var entrypoint []string
	if err := json.Unmarshal([]byte(last("ENTRYPOINT")), &entrypoint); err != nil {
		t.Fatalf("the Dockerfile's final stage needs an exec-form ENTRYPOINT: %v", err)
	}

	archive := filepath.Join(t.TempDir(), "image.tar")
	if err := Build(root, "meshstack-operator:test", runtime.GOARCH, archive); err != nil {
		t.Fatal(err)
	}
	img, err := tarball.ImageFromPath(archive, nil)
	if err != nil {
		t.Fatal(err)
	}
	cf, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	if want := last("USER"); cf.Config.User != want {
		t.Errorf("image user %q, the Dockerfile's USER %q", cf.Config.User, want)
	}
	if !regexp.MustCompile(`^[1-9][0-9]*:[0-9]+$`).MatchString(cf.Config.User) {
		t.Errorf("image user %q is not a numeric non-root uid:gid (runAsNonRoot cannot check a name)", cf.Config.User)
	}
	if strings.Join(cf.Config.Entrypoint, " ") != strings.Join(entrypoint, " ") {
		t.Errorf("image entrypoint %q, the Dockerfile's %q", cf.Config.Entrypoint, entrypoint)
	}
	if want := last("WORKDIR"); want != "" && cf.Config.WorkingDir != want {
		t.Errorf("image working directory %q, the Dockerfile's WORKDIR %q", cf.Config.WorkingDir, want)
	}
	if cf.OS != "linux" || cf.Architecture != runtime.GOARCH {
		t.Errorf("image platform %s/%s", cf.OS, cf.Architecture)
	}

	files := map[string][]byte{}
	modes := map[string]int64{}
	layers, err := img.Layers()
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range layers {
		rc, err := l.Uncompressed()
		if err != nil {
			t.Fatal(err)
		}
		tr := tar.NewReader(rc)
		for {
			h, err := tr.Next()
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				t.Fatal(err)
			}
			b, err := io.ReadAll(tr)
			if err != nil {
				t.Fatal(err)
			}
			files["/"+strings.TrimSuffix(h.Name, "/")] = b
			modes["/"+strings.TrimSuffix(h.Name, "/")] = h.Mode
		}
		rc.Close()
	}
	bin, ok := files[entrypoint[0]]
	if !ok {
		t.Fatalf("the image has no %s", entrypoint[0])
	}
	if modes[entrypoint[0]]&0o111 == 0 {
		t.Errorf("%s is not executable (mode %o)", entrypoint[0], modes[entrypoint[0]])
	}
	f, err := elf.NewFile(bytes.NewReader(bin))
	if err != nil {
		t.Fatalf("%s is not an ELF binary: %v", entrypoint[0], err)
	}
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP || p.Type == elf.PT_DYNAMIC {
			t.Errorf("%s is dynamically linked (program header %s)", entrypoint[0], p.Type)
		}
	}
	uid := strings.SplitN(cf.Config.User, ":", 2)[0]
	if !regexp.MustCompile(`(?m)^[^:]+:x:` + uid + `:`).Match(files["/etc/passwd"]) {
		t.Errorf("/etc/passwd has no entry for uid %s:\n%s", uid, files["/etc/passwd"])
	}
	gid := strings.SplitN(cf.Config.User, ":", 2)[1]
	if !regexp.MustCompile(`(?m)^[^:]+:x:` + gid + `:`).Match(files["/etc/group"]) {
		t.Errorf("/etc/group has no entry for gid %s:\n%s", gid, files["/etc/group"])
	}
}

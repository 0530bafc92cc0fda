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

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
)

// TestImageMatchesDockerfile keeps the image `make image` builds equal to
// the Dockerfile's in what matters to the chart and to users: the user
// (the chart's runAsNonRoot needs a numeric non-root one), the entrypoint
// and working directory of the final stage, and a static binary at the
// entrypoint (there is no libc in either image). It also checks that the
// user has a passwd entry, as distroless' nonroot has.
func TestImageMatchesDockerfile(t *testing.T) {
	root, err := repoRoot(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	last, entrypoint := dockerfileFinalStage(t, root)

	archive := filepath.Join(t.TempDir(), "image.tar")
	if err := Build(t.Context(), root, "meshstack-operator:test", runtime.GOARCH, archive); err != nil {
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
	checkConfig(t, cf, last, entrypoint)
	files, modes := imageFiles(t, img)
	checkStaticBinary(t, files, modes, entrypoint[0])
	checkUserEntries(t, cf.Config.User, files)
}

// dockerfileFinalStage reads the Dockerfile's final stage and returns a
// lookup of the argument of its last instruction of a kind ("" when there
// is none) and its exec-form ENTRYPOINT.
func dockerfileFinalStage(t *testing.T, root string) (last func(instruction string) string, entrypoint []string) {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(root, "Dockerfile"))
	if err != nil {
		t.Fatal(err)
	}
	final := string(data)
	if i := strings.LastIndex(final, "\nFROM "); i >= 0 {
		final = final[i:]
	}
	last = func(instruction string) string {
		m := regexp.MustCompile(`(?m)^`+instruction+`\s+(.+)$`).FindAllStringSubmatch(final, -1)
		if len(m) == 0 {
			return ""
		}
		return strings.TrimSpace(m[len(m)-1][1])
	}
	if err := json.Unmarshal([]byte(last("ENTRYPOINT")), &entrypoint); err != nil {
		t.Fatalf("the Dockerfile's final stage needs an exec-form ENTRYPOINT: %v", err)
	}
	return last, entrypoint
}

// checkConfig compares the image's user, entrypoint, working directory and
// platform with the Dockerfile's.
func checkConfig(t *testing.T, cf *v1.ConfigFile, last func(string) string, entrypoint []string) {
	t.Helper()
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
}

// imageFiles returns the contents and modes of the files in the image's
// layers by absolute path.
func imageFiles(t *testing.T, img v1.Image) (files map[string][]byte, modes map[string]int64) {
	t.Helper()
	files = map[string][]byte{}
	modes = map[string]int64{}
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
		if err := rc.Close(); err != nil {
			t.Fatal(err)
		}
	}
	return files, modes
}

// checkStaticBinary checks that the entrypoint is an executable, statically
// linked ELF binary.
func checkStaticBinary(t *testing.T, files map[string][]byte, modes map[string]int64, entrypoint string) {
	t.Helper()
	bin, ok := files[entrypoint]
	if !ok {
		t.Fatalf("the image has no %s", entrypoint)
	}
	if modes[entrypoint]&0o111 == 0 {
		t.Errorf("%s is not executable (mode %o)", entrypoint, modes[entrypoint])
	}
	f, err := elf.NewFile(bytes.NewReader(bin))
	if err != nil {
		t.Fatalf("%s is not an ELF binary: %v", entrypoint, err)
	}
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP || p.Type == elf.PT_DYNAMIC {
			t.Errorf("%s is dynamically linked (program header %s)", entrypoint, p.Type)
		}
	}
}

// checkUserEntries checks that the image's uid:gid user has entries in
// /etc/passwd and /etc/group.
func checkUserEntries(t *testing.T, user string, files map[string][]byte) {
	t.Helper()
	uid := strings.SplitN(user, ":", 2)[0]
	if !regexp.MustCompile(`(?m)^[^:]+:x:` + uid + `:`).Match(files["/etc/passwd"]) {
		t.Errorf("/etc/passwd has no entry for uid %s:\n%s", uid, files["/etc/passwd"])
	}
	gid := strings.SplitN(user, ":", 2)[1]
	if !regexp.MustCompile(`(?m)^[^:]+:x:` + gid + `:`).Match(files["/etc/group"]) {
		t.Errorf("/etc/group has no entry for gid %s:\n%s", gid, files["/etc/group"])
	}
}

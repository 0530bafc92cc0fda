// Command image builds the operator's container image as a docker-save
// archive without a Docker engine, for machines (and CI) that have no
// Docker and no registry: `ctr images import` or `docker load` take the
// archive.
//
// The Dockerfile stays the recipe for registries; this builds the same
// image in what matters (TestImageMatchesDockerfile keeps them equal): the
// binary built with the Dockerfile's own `go build` line (static,
// CGO_ENABLED=0, -trimpath, -s -w) at /meshstack-operator, USER 65532:65532
// with a passwd and group entry for it (distroless' nonroot), WORKDIR / and
// ENTRYPOINT ["/meshstack-operator"]. There is no base image: distroless
// static adds only those files, the CA bundle and tzdata, of which the
// operator needs the CA bundle (an https metering receiver), taken from the
// machine.
package main

import (
	"archive/tar"
	"bytes"
	"context"
	"flag"
	"fmt"
	"io"
	"log"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
)

// The nonroot user of distroless, which the Dockerfile's USER names.
const (
	uid         = 65532
	binaryPath  = "/meshstack-operator"
	caBundle    = "/etc/ssl/certs/ca-certificates.crt"
	defaultRepo = "meshstack-operator:dev"
)

func main() {
	tag := flag.String("tag", defaultRepo, "image reference written into the archive (what Pods name as image)")
	out := flag.String("o", "bin/meshstack-operator-image.tar", "archive to write (docker-save format)")
	arch := flag.String("arch", runtime.GOARCH, "GOARCH of the image")
	binary := flag.String("binary", "", "wrap this static binary instead of building the operator (the test cluster's pause image)")
	flag.Parse()
	log.SetFlags(0)

	ctx := context.Background()
	root, err := repoRoot(ctx)
	if err != nil {
		log.Fatal(err)
	}
	if *binary != "" {
		err = Write(*binary, *tag, *arch, *out)
	} else {
		err = Build(ctx, root, *tag, *arch, *out)
	}
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(*out)
}

// Build compiles the operator with the Dockerfile's build line and writes
// the image, tagged tag, to the archive out. ctx ends the go build.
func Build(ctx context.Context, root, tag, arch, out string) error {
	dir, err := os.MkdirTemp("", "meshstack-image-")
	if err != nil {
		return err
	}
	defer func() {
		// Best effort: the archive is written (or the build failed) by
		// then, and a binary left under $TMPDIR harms nothing.
		_ = os.RemoveAll(dir)
	}()
	bin := filepath.Join(dir, "meshstack-operator")
	if err := buildBinary(ctx, root, arch, bin); err != nil {
		return err
	}
	return Write(bin, tag, arch, out)
}

// Write writes the image around the static binary bin, tagged tag, to the
// archive out.
func Write(bin, tag, arch, out string) error {
	ref, err := name.NewTag(tag)
	if err != nil {
		return err
	}
	img, err := Image(bin, arch)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(out), 0o755); err != nil {
		return err
	}
	tmp := out + ".tmp"
	if err := tarball.WriteToFile(tmp, ref, img); err != nil {
		return err
	}
	return os.Rename(tmp, out)
}

// buildBinary runs the Dockerfile's `go build` line (read from the
// Dockerfile, not copied, so the two cannot drift) with its output
// redirected to bin.
func buildBinary(ctx context.Context, root, arch, bin string) error {
	line, err := DockerfileBuildLine(root)
	if err != nil {
		return err
	}
	out := regexp.MustCompile(`-o\s+(\S+)`).FindString(line)
	if out == "" {
		return fmt.Errorf("the Dockerfile's build line %q names no -o output", line)
	}
	cmd := exec.CommandContext(ctx, "bash", "-c", strings.Replace(line, out, "-o "+bin, 1))
	cmd.Dir = root
	cmd.Env = append(os.Environ(), "TARGETOS=linux", "TARGETARCH="+arch)
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("%s: %w", line, err)
	}
	return nil
}

// DockerfileBuildLine returns the command of the Dockerfile's RUN line that
// runs go build.
func DockerfileBuildLine(root string) (string, error) {
	data, err := os.ReadFile(filepath.Join(root, "Dockerfile"))
	if err != nil {
		return "", err
	}
	m := regexp.MustCompile(`(?m)^RUN\s+(.*\bgo build\b.*)$`).FindSubmatch(data)
	if m == nil {
		return "", fmt.Errorf("no RUN ... go build line in the Dockerfile")
	}
	return string(m[1]), nil
}

// Image assembles the one-layer image around the binary bin.
func Image(bin, arch string) (v1.Image, error) {
	layer, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) {
		data, err := layerTar(bin)
		if err != nil {
			return nil, err
		}
		return io.NopCloser(bytes.NewReader(data)), nil
	})
	if err != nil {
		return nil, err
	}
	img, err := mutate.AppendLayers(empty.Image, layer)
	if err != nil {
		return nil, err
	}
	cf, err := img.ConfigFile()
	if err != nil {
		return nil, err
	}
	cf = cf.DeepCopy()
	cf.OS, cf.Architecture = "linux", arch
	cf.Config.User = fmt.Sprintf("%d:%d", uid, uid)
	cf.Config.Entrypoint = []string{binaryPath}
	cf.Config.WorkingDir = "/"
	cf.Config.Env = []string{"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "SSL_CERT_FILE=" + caBundle}
	cf.Config.Labels = map[string]string{
		"org.opencontainers.image.title":  "meshstack-operator",
		"org.opencontainers.image.source": "https://github.com/meshcloud/meshstack-operator",
	}
	return mutate.ConfigFile(img, cf)
}

// layerTar is the image's only layer: the binary, passwd and group with
// root and nonroot as distroless has them, the CA bundle when the machine
// has one, and /tmp. Fixed times keep the digest reproducible.
func layerTar(bin string) ([]byte, error) {
	epoch := time.Unix(0, 0)
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	dir := func(entry string, mode int64) error {
		return tw.WriteHeader(&tar.Header{Typeflag: tar.TypeDir, Name: entry + "/", Mode: mode, ModTime: epoch})
	}
	file := func(entry string, mode int64, owner int, data []byte) error {
		h := &tar.Header{
			Typeflag: tar.TypeReg, Name: entry, Mode: mode, Size: int64(len(data)),
			Uid: owner, Gid: owner, ModTime: epoch,
		}
		if err := tw.WriteHeader(h); err != nil {
			return err
		}
		_, err := tw.Write(data)
		return err
	}
	binary, err := os.ReadFile(bin)
	if err != nil {
		return nil, err
	}
	passwd := fmt.Sprintf("root:x:0:0:root:/root:/sbin/nologin\nnonroot:x:%d:%d:nonroot:/home/nonroot:/sbin/nologin\n", uid, uid)
	group := fmt.Sprintf("root:x:0:\nnonroot:x:%d:\n", uid)
	steps := []func() error{
		func() error { return dir("etc", 0o755) },
		func() error { return file("etc/passwd", 0o644, 0, []byte(passwd)) },
		func() error { return file("etc/group", 0o644, 0, []byte(group)) },
		func() error { return dir("home", 0o755) },
		func() error {
			return tw.WriteHeader(&tar.Header{Typeflag: tar.TypeDir, Name: "home/nonroot/", Mode: 0o700, Uid: uid, Gid: uid, ModTime: epoch})
		},
		func() error { return dir("tmp", 0o1777) },
		func() error { return file(strings.TrimPrefix(binaryPath, "/"), 0o755, 0, binary) },
	}
	if ca, err := os.ReadFile(caBundle); err == nil {
		steps = append(steps,
			func() error { return dir("etc/ssl", 0o755) },
			func() error { return dir("etc/ssl/certs", 0o755) },
			func() error { return file(strings.TrimPrefix(caBundle, "/"), 0o644, 0, ca) })
	}
	for _, step := range steps {
		if err := step(); err != nil {
			return nil, err
		}
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

func repoRoot(ctx context.Context) (string, error) {
	out, err := exec.CommandContext(ctx, "go", "list", "-m", "-f", "{{.Dir}}").Output()
	if err != nil {
		return "", fmt.Errorf("go list -m: %w", err)
	}
	return strings.TrimSpace(string(out)), nil
}

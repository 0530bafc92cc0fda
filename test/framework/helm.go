package framework

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

// ChartDir is the Helm chart, relative to the repo root.
const ChartDir = "config/helm/meshstack-operator"

var helmBinary = cachedTool("HELM", "setup-helm.sh")

// HelmBinary is the helm to run: $HELM, which `make test` sets, or the one
// hack/setup-helm.sh builds from the Go module proxy and caches.
func HelmBinary() (string, error) { return helmBinary() }

// Helm runs helm in the repo root (so ChartDir resolves) with its own
// config and cache directories under dir, and returns its stdout; the error
// carries stderr.
func Helm(ctx context.Context, dir string, args ...string) ([]byte, error) {
	bin, err := HelmBinary()
	if err != nil {
		return nil, err
	}
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Dir = RepoRoot()
	cmd.Env = append(os.Environ(),
		"HELM_CONFIG_HOME="+filepath.Join(dir, "helm", "config"),
		"HELM_CACHE_HOME="+filepath.Join(dir, "helm", "cache"),
		"HELM_DATA_HOME="+filepath.Join(dir, "helm", "data"),
	)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return stdout.Bytes(), fmt.Errorf("helm %s: %w\n%s%s", strings.Join(args, " "), err, stdout.String(), stderr.String())
	}
	return stdout.Bytes(), nil
}

package framework

import (
	"os"
	"os/exec"
	"testing"
)

// InCI reports whether the tests run in CI (CI=true, as .ci/run and most CI
// systems set it). There a missing tool is a broken runner, not a reason to
// pass without the proof the test gives.
func InCI() bool { return os.Getenv("CI") == "true" }

// SkipOrFailInCI skips the test with the reason on a developer's machine and
// fails it in CI, so that CI cannot go green while the test did not run.
func SkipOrFailInCI(t testing.TB, reason string) {
	t.Helper()
	if InCI() {
		t.Fatalf("CI=true and %s", reason)
	}
	t.Skip(reason)
}

// RequireTool returns the path of the named tool on PATH; when it is missing
// the test skips, or fails in CI. why says what the test needs it for.
func RequireTool(t testing.TB, name, why string) string {
	t.Helper()
	path, err := exec.LookPath(name)
	if err != nil {
		SkipOrFailInCI(t, name+" is not on PATH; "+why)
	}
	return path
}

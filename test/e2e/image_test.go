package e2e

import (
	"debug/elf"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/meshcloud/meshstack-operator/test/framework"
)

// The spec checks the image recipe without a Docker engine: a
// multi-stage build whose binary is static and runs as non-root on a
// distroless base. It runs the Dockerfile's own `go build` line and checks
// that the result is a static executable, and that the build context
// copies every package of the module the binary needs.
var _ = Describe("The Dockerfile", func() {
	It("builds a static binary that runs as non-root on distroless, from a build context with every package it needs", func(ctx SpecContext) {
		root := framework.RepoRoot()
		data, err := os.ReadFile(filepath.Join(root, "Dockerfile"))
		Expect(err).NotTo(HaveOccurred())
		dockerfile := string(data)

		froms := regexp.MustCompile(`(?m)^FROM\s+(\S+)(?:\s+AS\s+(\S+))?`).FindAllStringSubmatch(dockerfile, -1)
		Expect(len(froms)).To(BeNumerically(">=", 2), "a multi-stage build, FROM lines %q", froms)
		final := froms[len(froms)-1][1]
		Expect(final).To(And(HavePrefix("gcr.io/distroless/static"), HaveSuffix(":nonroot")), "the final stage's FROM")
		user := regexp.MustCompile(`(?m)^USER\s+(\S+)`).FindAllStringSubmatch(dockerfile, -1)
		Expect(user).NotTo(BeEmpty(), "the image must run as a non-root USER")
		Expect(user[len(user)-1][1]).NotTo(Or(HavePrefix("0"), HavePrefix("root")), "the image must run as a non-root USER")
		Expect(dockerfile).To(MatchRegexp(`(?m)^COPY --from=`+regexp.QuoteMeta(froms[0][2])+`\s`),
			"the final stage copies from the %s stage", froms[0][2])

		// The build line, run as the builder stage runs it (the context is the
		// repo root), with the binary written to a temporary directory.
		build := regexp.MustCompile(`(?m)^RUN\s+(.*\bgo build\b.*)$`).FindStringSubmatch(dockerfile)
		Expect(build).NotTo(BeNil(), "a RUN ... go build line in the Dockerfile")
		Expect(build[1]).To(ContainSubstring("CGO_ENABLED=0"), "the build line")
		out := regexp.MustCompile(`-o\s+(\S+)`).FindStringSubmatch(build[1])
		Expect(out).NotTo(BeNil(), "the build line %q names no -o output", build[1])
		bin := filepath.Join(GinkgoT().TempDir(), "meshstack-operator")
		line := strings.Replace(build[1], out[0], "-o "+bin, 1)
		cmd := exec.CommandContext(ctx, "bash", "-c", line)
		cmd.Dir = root
		cmd.Env = append(os.Environ(), "TARGETOS=linux", "TARGETARCH="+runtime.GOARCH)
		output, err := cmd.CombinedOutput()
		Expect(err).NotTo(HaveOccurred(), "%s:\n%s", line, output)
		f, err := elf.Open(bin)
		Expect(err).NotTo(HaveOccurred())
		defer func() { _ = f.Close() }()
		for _, p := range f.Progs {
			Expect(p.Type).NotTo(BeElementOf(elf.PT_INTERP, elf.PT_DYNAMIC),
				"the binary is dynamically linked; distroless/static has no libc")
		}

		// Every package of this module that the binary links must be in a
		// directory the Dockerfile copies into the build stage.
		copied := regexp.MustCompile(`(?m)^COPY\s+(\S+/)\s+\S+`).FindAllStringSubmatch(dockerfile, -1)
		list := exec.CommandContext(ctx, "go", "list", "-deps", "-f", "{{if not .Standard}}{{.Dir}}{{end}}", "./cmd")
		list.Dir = root
		deps, err := list.Output()
		Expect(err).NotTo(HaveOccurred(), "go list")
		var uncopied []string
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
				uncopied = append(uncopied, rel)
			}
		}
		Expect(uncopied).To(BeEmpty(), "packages the binary needs that the Dockerfile does not COPY into the build stage")
	})
})

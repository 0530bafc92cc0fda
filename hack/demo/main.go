// Command demo starts a local control plane from the envtest binaries,
// installs the CRD, runs the operator under its least-privilege
// ServiceAccount, applies config/samples and shows what the operator made.
// `make demo` runs it; Ctrl-C stops everything and removes the files.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"

	"github.com/meshcloud/meshstack-operator/test/framework"
)

func main() {
	once := flag.Bool("once", false, "Exit after showing the result instead of waiting for Ctrl-C.")
	binary := flag.String("operator", "bin/meshstack-operator", "Operator binary to run (make demo builds it).")
	flag.Parse()

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, *binary, *once); err != nil {
		fmt.Fprintln(os.Stderr, "demo:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, binary string, once bool) error {
	binary, err := filepath.Abs(binary)
	if err != nil {
		return err
	}
	if _, err := os.Stat(binary); err != nil {
		return fmt.Errorf("operator binary: %w (run `make build` first)", err)
	}
	if _, err := exec.LookPath("kubectl"); err != nil {
		return fmt.Errorf("the demo drives the cluster with kubectl, which is not on PATH")
	}
	dir, err := os.MkdirTemp("", "meshstack-demo-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)

	step("Starting a local control plane (kube-apiserver and etcd from KUBEBUILDER_ASSETS) and installing the MeshProject CRD")
	fw, err := framework.Start()
	if err != nil {
		return err
	}
	defer func() {
		step("Stopping the control plane and removing " + dir)
		_ = fw.Stop()
	}()
	// envtest runs no controller-manager; fill admin/edit/view as its
	// aggregation controller would, so the bindings grant real access.
	if err := fw.FillAggregatedClusterRoles(ctx); err != nil {
		return err
	}
	adminKubeconfig := filepath.Join(dir, "kubeconfig")
	data, err := fw.AdminKubeconfig()
	if err != nil {
		return err
	}
	if err := os.WriteFile(adminKubeconfig, data, 0o600); err != nil {
		return err
	}

	step("Creating ServiceAccount meshcloud/meshfed-service with the replicator's least-privilege roles (config/rbac/replicator)")
	sa, err := fw.CreateServiceAccount(ctx, "meshcloud", "meshfed-service", "config/rbac/replicator/role.yaml")
	if err != nil {
		return err
	}
	replicatorKubeconfig := filepath.Join(dir, "meshfed-service.kubeconfig")
	if data, err = fw.TokenKubeconfig(ctx, sa, 24*3600); err != nil {
		return err
	}
	if err := os.WriteFile(replicatorKubeconfig, data, 0o600); err != nil {
		return err
	}

	logFile := filepath.Join(dir, "operator.log")
	step("Starting " + binary + " --components=replicator, authenticated only by the ServiceAccount's token (log: " + logFile + ")")
	stopOperator, err := start(ctx, binary, logFile,
		"--kubeconfig="+replicatorKubeconfig, "--components=replicator",
		"--metrics-bind-address=0", "--health-probe-bind-address=0")
	if err != nil {
		return err
	}
	defer stopOperator()

	step("kubectl apply -f config/samples")
	if err := kubectl(ctx, adminKubeconfig, "apply", "-f", "config/samples"); err != nil {
		return err
	}
	if err := kubectl(ctx, adminKubeconfig, "wait", "--for=condition=Ready", "meshprojects", "--all", "--timeout=60s"); err != nil {
		return fmt.Errorf("waiting for the samples to become Ready (see %s): %w", logFile, err)
	}

	step("MeshProjects")
	_ = kubectl(ctx, adminKubeconfig, "get", "meshprojects", "-o", "wide")
	step("Namespaces the operator created")
	_ = kubectl(ctx, adminKubeconfig, "get", "namespaces", "-l", "app.kubernetes.io/managed-by=meshstack-operator", "--show-labels")
	step("RoleBindings the operator created")
	_ = kubectl(ctx, adminKubeconfig, "get", "rolebindings", "-A", "-l", "app.kubernetes.io/managed-by=meshstack-operator",
		"-o", "custom-columns=NAMESPACE:.metadata.namespace,NAME:.metadata.name,CLUSTERROLE:.roleRef.name,SUBJECTS:.subjects[*].name")
	step("What mesh:alice may do (kubectl auth can-i --as mesh:alice)")
	for _, ns := range []string{"acme-webshop", "acme-analytics"} {
		for _, verb := range []string{"create", "get"} {
			fmt.Printf("  %-6s deployments in %-15s ", verb, ns)
			_ = kubectlQuiet(ctx, adminKubeconfig, "auth", "can-i", verb, "deployments", "-n", ns, "--as", "mesh:alice")
		}
	}

	fmt.Printf("\nTry it yourself:\n  export KUBECONFIG=%s\n  kubectl get meshprojects\n  kubectl edit meshproject acme-webshop\n  kubectl auth can-i create deployments -n acme-webshop --as mesh:alice\n", adminKubeconfig)
	if once {
		return nil
	}
	fmt.Println("\nThe demo keeps running. Press Ctrl-C to stop it and clean up.")
	<-ctx.Done()
	return nil
}

func step(msg string) { fmt.Printf("\n==> %s\n", msg) }

// start runs binary with args until the returned function is called.
func start(ctx context.Context, binary, logFile string, args ...string) (func(), error) {
	log, err := os.Create(logFile)
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(binary, args...)
	cmd.Stdout, cmd.Stderr = log, log
	if err := cmd.Start(); err != nil {
		log.Close()
		return nil, err
	}
	return func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		done := make(chan struct{})
		go func() { _ = cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			_ = cmd.Process.Kill()
			<-done
		}
		log.Close()
	}, nil
}

func kubectl(ctx context.Context, kubeconfig string, args ...string) error {
	cmd := exec.CommandContext(ctx, "kubectl", append([]string{"--kubeconfig", kubeconfig}, args...)...)
	cmd.Stdout, cmd.Stderr = os.Stdout, os.Stderr
	return cmd.Run()
}

// kubectlQuiet is kubectl for commands whose non-zero exit is an answer
// ("no" from auth can-i), not a failure.
func kubectlQuiet(ctx context.Context, kubeconfig string, args ...string) error {
	cmd := exec.CommandContext(ctx, "kubectl", append([]string{"--kubeconfig", kubeconfig}, args...)...)
	cmd.Stdout = os.Stdout
	return cmd.Run()
}

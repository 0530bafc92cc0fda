// Command demo starts a local control plane from the envtest binaries,
// installs the Helm chart into it as a cluster admin would, runs the
// replicator and the meter as two processes under the chart's ServiceAccounts
// (as the chart's Deployments run them in a real cluster), applies
// config/samples and shows what the operator made and metered.
// `make demo` runs it; Ctrl-C stops everything and removes the files.
package main

import (
	"bufio"
	"bytes"
	"context"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/meshcloud/meshstack-operator/internal/metering/checkpoint"
	"github.com/meshcloud/meshstack-operator/test/framework"
)

// The demo meters in short windows so that records appear within seconds.
const (
	meteringInterval = 2 * time.Second
	meteringWindow   = 10 * time.Second
	releaseNamespace = "meshcloud"
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
	helm, err := framework.HelmBinary()
	if err != nil {
		return err
	}
	dir, err := os.MkdirTemp("", "meshstack-demo-")
	if err != nil {
		return err
	}
	defer func() {
		// Best effort: the control plane is stopped by then, and a
		// directory left under $TMPDIR harms nothing; the demo's own
		// error is what the caller needs to see.
		_ = os.RemoveAll(dir)
	}()

	step("Starting a local control plane (kube-apiserver and etcd from KUBEBUILDER_ASSETS)")
	fw, err := framework.Start(framework.WithoutCRDs())
	if err != nil {
		return err
	}
	defer func() {
		step("Stopping the control plane and removing " + dir)
		_ = fw.Stop()
	}()
	adminKubeconfig := filepath.Join(dir, "kubeconfig")
	data, err := fw.AdminKubeconfig()
	if err != nil {
		return err
	}
	if err := os.WriteFile(adminKubeconfig, data, 0o600); err != nil {
		return err
	}

	step("helm install meshstack-operator " + framework.ChartDir + " -n " + releaseNamespace + " --create-namespace")
	out, err := framework.Helm(ctx, dir, "install", "meshstack-operator", framework.ChartDir,
		"--namespace", releaseNamespace, "--create-namespace", "--kubeconfig", adminKubeconfig)
	if err != nil {
		return err
	}
	fmt.Print(indent(string(out)))
	step("What the chart installed: the MeshProject and MeshLandingZone CRDs, meshStack's ServiceAccounts and roles, two Deployments")
	_ = kubectl(ctx, adminKubeconfig, "get", "crd/meshprojects.meshcloud.io", "crd/meshlandingzones.meshcloud.io")
	_ = kubectl(ctx, adminKubeconfig, "get", "clusterroles,clusterrolebindings,roles,rolebindings,serviceaccounts,deployments",
		"-A", "-l", "app.kubernetes.io/instance=meshstack-operator")
	fmt.Println("  (this control plane has no scheduler or kubelet, so the Deployments stay unscheduled;\n" +
		"   the demo runs the same binary as two local processes under the same ServiceAccounts)")
	// envtest runs no controller-manager; fill admin/edit/view as its
	// aggregation controller would, so the bindings grant real access.
	if err := fw.FillAggregatedClusterRoles(ctx); err != nil {
		return err
	}

	usageFile := filepath.Join(dir, "usage.jsonl")
	components := []struct{ serviceAccount, component string }{
		{"meshfed-service", "replicator"},
		{"meshfed-metering", "metering"},
	}
	for _, c := range components {
		kubeconfig := filepath.Join(dir, c.serviceAccount+".kubeconfig")
		data, err := fw.TokenKubeconfig(ctx, framework.ServiceAccount{Namespace: releaseNamespace, Name: c.serviceAccount}, 24*3600)
		if err != nil {
			return err
		}
		if err := os.WriteFile(kubeconfig, data, 0o600); err != nil {
			return err
		}
		args := []string{"--kubeconfig=" + kubeconfig, "--components=" + c.component,
			"--leader-elect", "--leader-election-namespace=" + releaseNamespace,
			"--metrics-bind-address=0", "--health-probe-bind-address=0"}
		if c.component == "metering" {
			args = append(args, "--metering-output="+usageFile,
				"--metering-interval="+meteringInterval.String(), "--metering-window="+meteringWindow.String())
		}
		logFile := filepath.Join(dir, c.component+".log")
		step(fmt.Sprintf("Starting %s --components=%s, authenticated only by a token of ServiceAccount %s/%s (log: %s)",
			binary, c.component, releaseNamespace, c.serviceAccount, logFile))
		p, err := framework.StartProcess(binary, logFile, args...)
		if err != nil {
			return err
		}
		defer func() { _ = p.Stop() }()
	}

	step("kubectl apply -f config/samples")
	if err := kubectl(ctx, adminKubeconfig, "apply", "-f", "config/samples"); err != nil {
		return err
	}
	if err := kubectl(ctx, adminKubeconfig, "wait", "--for=condition=Ready", "meshprojects", "--all", "--timeout=60s"); err != nil {
		return fmt.Errorf("waiting for the samples to become Ready (see %s): %w", filepath.Join(dir, "replicator.log"), err)
	}

	step("MeshProjects")
	_ = kubectl(ctx, adminKubeconfig, "get", "meshprojects", "-o", "wide")
	step("Namespaces the operator created")
	_ = kubectl(ctx, adminKubeconfig, "get", "namespaces",
		"-l", "app.kubernetes.io/managed-by=meshstack-operator", "--show-labels")
	step("RoleBindings the operator created")
	_ = kubectl(ctx, adminKubeconfig, "get", "rolebindings", "-A", "-l", "app.kubernetes.io/managed-by=meshstack-operator",
		"-o", "custom-columns=NAMESPACE:.metadata.namespace,NAME:.metadata.name,CLUSTERROLE:.roleRef.name,SUBJECTS:.subjects[*].name")
	step("The landing zone \"standard\" and what it gave acme-analytics: its ResourceQuota (the zone's, " +
		"with the project's requests.cpu on top), LimitRange and NetworkPolicy")
	_ = kubectlQuiet(ctx, adminKubeconfig, "wait", "--for=jsonpath={.status.projects}=1",
		"meshlandingzone/standard", "--timeout=30s")
	_ = kubectl(ctx, adminKubeconfig, "get", "meshlandingzones")
	_ = kubectl(ctx, adminKubeconfig, "get", "resourcequota/meshproject-quota", "-n", "acme-analytics",
		"-o", "custom-columns=NAMESPACE:.metadata.namespace,NAME:.metadata.name,HARD:.spec.hard")
	_ = kubectl(ctx, adminKubeconfig, "get", "limitrange/meshproject-limits", "-n", "acme-analytics",
		"-o", "custom-columns=NAMESPACE:.metadata.namespace,NAME:.metadata.name,TYPE:.spec.limits[*].type,"+
			"DEFAULT:.spec.limits[*].default,DEFAULT-REQUEST:.spec.limits[*].defaultRequest")
	_ = kubectl(ctx, adminKubeconfig, "get", "networkpolicies", "-n", "acme-analytics",
		"-l", "app.kubernetes.io/managed-by=meshstack-operator")
	step("What mesh:alice may do (kubectl auth can-i --as mesh:alice)")
	for _, ns := range []string{"acme-webshop", "acme-analytics"} {
		for _, verb := range []string{"create", "get"} {
			fmt.Printf("  %-6s deployments in %-15s ", verb, ns)
			_ = kubectlQuiet(ctx, adminKubeconfig, "auth", "can-i", verb, "deployments", "-n", ns, "--as", "mesh:alice")
		}
	}

	step(fmt.Sprintf("Metering: a pod requesting 250m CPU and 64Mi runs in acme-webshop; "+
		"the meter lists pods every %s and writes a record per namespace and %s window to %s",
		meteringInterval, meteringWindow, usageFile))
	if err := startDemoPod(ctx, fw); err != nil {
		return err
	}
	records, err := waitForUsage(ctx, usageFile, "acme-webshop", 3*meteringWindow)
	if err != nil {
		return fmt.Errorf("%w (see %s)", err, filepath.Join(dir, "metering.log"))
	}
	fmt.Print(indent(records))

	step(fmt.Sprintf("The metering checkpoint: what was counted and what is still to be delivered (kubectl get configmap -n %s %s)",
		releaseNamespace, checkpoint.DefaultName))
	_ = kubectl(ctx, adminKubeconfig, "get", "configmap", "-n", releaseNamespace, checkpoint.DefaultName)
	_ = kubectl(ctx, adminKubeconfig, "get", "configmap", "-n", releaseNamespace, checkpoint.DefaultName,
		"-o", `go-template={{range $k, $v := .data}}  {{$k}}: {{$v}}{{"\n"}}{{end}}`+
			`{{range $k, $v := .binaryData}}  {{$k}}: (gzipped JSON, {{len $v}} characters of base64){{"\n"}}{{end}}`)

	fmt.Printf("\nTry it yourself:\n  export KUBECONFIG=%s\n  kubectl get meshprojects\n  kubectl edit meshproject acme-webshop\n"+
		"  kubectl auth can-i create deployments -n acme-webshop --as mesh:alice\n"+
		"  kubectl edit meshlandingzone standard\n  %s list -n %s\n  tail -f %s\n",
		adminKubeconfig, helm, releaseNamespace, usageFile)
	if once {
		return nil
	}
	fmt.Println("\nThe demo keeps running. Press Ctrl-C to stop it and clean up.")
	<-ctx.Done()
	return nil
}

// startDemoPod creates a pod in acme-webshop and marks it Running, as a
// kubelet would; this control plane has none.
func startDemoPod(ctx context.Context, fw *framework.Framework) error {
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "webshop", Namespace: "acme-webshop"},
		Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "web", Image: "registry.example/webshop:1",
			Resources: corev1.ResourceRequirements{Requests: corev1.ResourceList{
				corev1.ResourceCPU: resource.MustParse("250m"), corev1.ResourceMemory: resource.MustParse("64Mi")}}}}},
	}
	if err := fw.Client.Create(ctx, pod); err != nil {
		return err
	}
	pod.Status = corev1.PodStatus{Phase: corev1.PodRunning, StartTime: &metav1.Time{Time: time.Now()}}
	return fw.Client.Status().Update(ctx, pod)
}

// waitForUsage waits until the metering output has a record of namespace
// and returns the lines written so far.
func waitForUsage(ctx context.Context, path, namespace string, timeout time.Duration) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	ticker := time.NewTicker(500 * time.Millisecond)
	defer ticker.Stop()
	want := fmt.Sprintf(`"namespace":%q`, namespace)
	for {
		data, err := os.ReadFile(path)
		if err != nil && !os.IsNotExist(err) {
			return "", err
		}
		if bytes.Contains(data, []byte(want)) {
			return string(data), nil
		}
		select {
		case <-ctx.Done():
			return "", fmt.Errorf("no usage record of %s in %s after %s", namespace, path, timeout)
		case <-ticker.C:
		}
	}
}

func indent(s string) string {
	var b strings.Builder
	sc := bufio.NewScanner(strings.NewReader(s))
	sc.Buffer(make([]byte, 0, 64*1024), 1024*1024)
	for sc.Scan() {
		b.WriteString("  " + sc.Text() + "\n")
	}
	return b.String()
}

func step(msg string) { fmt.Printf("\n==> %s\n", msg) }

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

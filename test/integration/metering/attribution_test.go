package metering_test

import (
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	meshv1 "github.com/meshcloud/meshstack-operator/api/v1alpha1"
	"github.com/meshcloud/meshstack-operator/internal/metering"
	"github.com/meshcloud/meshstack-operator/internal/metering/usage"
)

var _ = Describe("Attribution", func() {
	// managedNamespace creates a namespace with the marks the replicator
	// puts on the namespaces it manages.
	managedNamespace := func(customer, project, zone string, tags map[string]string) string {
		GinkgoHelper()
		labels := map[string]string{
			meshv1.LabelManagedBy: meshv1.ManagedByValue, meshv1.LabelCustomer: customer, meshv1.LabelProject: project,
			meshv1.LabelLandingZone: zone,
		}
		for k, v := range tags {
			labels[meshv1.TagLabelPrefix+k] = v
		}
		name := customer + "-" + project
		Expect(fw.Client.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: labels,
			Annotations: map[string]string{meshv1.AnnotationMeshProject: name}}})).To(Succeed())
		return name
	}
	podIn := func(namespace string) {
		GinkgoHelper()
		createPod(namespace, "web", resources("100m", "", "", ""), corev1.PodRunning, time.Now().Add(-time.Hour))
	}
	// kube-system exists in every cluster, and has pods; the spec's pod
	// there is its own.
	podInKubeSystem := func() {
		GinkgoHelper()
		pod := &corev1.Pod{
			ObjectMeta: metav1.ObjectMeta{Namespace: "kube-system", GenerateName: "dns-"},
			Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "dns", Image: "registry.k8s.io/pause:3.10"}}},
		}
		err := fw.Client.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "kube-system"}})
		if !apierrors.IsAlreadyExists(err) {
			Expect(err).NotTo(HaveOccurred())
		}
		Expect(fw.Client.Create(ctx, pod)).To(Succeed())
		DeferCleanup(func() { deletePod(pod) })
		pod.Status.Phase, pod.Status.StartTime = corev1.PodRunning, &metav1.Time{Time: time.Now().Add(-time.Hour)}
		Expect(fw.Client.Status().Update(ctx, pod)).To(Succeed())
	}

	// projectsAndStrangers runs a pod in a managed namespace (customer c,
	// project shop, zone prod, a tag), one in a namespace someone else
	// named like a project, and one in kube-system, and starts a meter with
	// project attribution and the namespaces role.
	projectsAndStrangers := func(unmanaged string) (c, shop, foreign string, out *syncBuffer) {
		GinkgoHelper()
		c = newCustomer()
		shop = managedNamespace(c, "shop", "prod", map[string]string{"cost-center": "4711"})
		foreign = c + "-web"
		podIn(shop)
		podIn(foreign)
		podInKubeSystem()
		bindNamespacesRole()
		out = &syncBuffer{}
		opts := stdoutOptions(out)
		opts.MeteringAttribution = metering.AttributionProject
		opts.MeteringUnmanagedNamespaces = unmanaged
		startMeter(opts)
		return c, shop, foreign, out
	}

	It("attributes usage to the MeshProject of a namespace the replicator manages, "+
		"and never kube-system or a foreign namespace named like a project", func() {
		c, shop, foreign, out := projectsAndStrangers(metering.UnmanagedInclude)
		since := usage.WindowStart(time.Now(), window).Add(window)
		waitForRecords(stdoutRecords(out), shop, since, 1)
		waitForRecords(stdoutRecords(out), foreign, since, 1)
		waitForRecords(stdoutRecords(out), "kube-system", since, 1)

		all := stdoutRecords(out)(Default)
		for _, r := range inNamespace(all, shop) {
			Expect(r.AttributedBy).To(Equal(metering.AttributedByProject))
			Expect([]string{r.CustomerIdentifier, r.ProjectIdentifier, r.LandingZone}).To(Equal([]string{c, "shop", "prod"}))
			Expect(r.Tags).To(Equal(map[string]string{"cost-center": "4711"}))
		}
		for _, ns := range []string{foreign, "kube-system"} {
			for _, r := range inNamespace(all, ns) {
				Expect(r.AttributedBy).To(BeEmpty(), "%s is nobody's project", ns)
				Expect([]string{r.CustomerIdentifier, r.ProjectIdentifier, r.LandingZone}).To(HaveEach(BeEmpty()), "%s is nobody's project", ns)
				Expect(r.PodSeconds).To(BeNumerically(">", 0), "unmanaged namespaces get records by default")
			}
		}
		Expect(logs.String()).NotTo(ContainSubstring("not permitted"))
	})

	It("gives namespaces that are no project's no records with --metering-unmanaged-namespaces=exclude", func() {
		_, shop, foreign, out := projectsAndStrangers(metering.UnmanagedExclude)
		waitForRecords(stdoutRecords(out), shop, usage.WindowStart(time.Now(), window).Add(2*window), 1)
		all := stdoutRecords(out)(Default)
		Expect(inNamespace(all, foreign)).To(BeEmpty())
		Expect(inNamespace(all, "kube-system")).To(BeEmpty())
	})

	It("attributes by name without the namespaces role, never kube-system, and says what is missing", func() {
		c := newCustomer()
		foreign := c + "-web"
		podIn(foreign)
		podInKubeSystem()

		out := &syncBuffer{}
		opts := stdoutOptions(out)
		opts.MeteringAttribution = metering.AttributionProject
		startMeter(opts)
		since := usage.WindowStart(time.Now(), window).Add(window)
		records := waitForRecords(stdoutRecords(out), foreign, since, 1)
		Expect(records[len(records)-1].AttributedBy).To(Equal(metering.AttributedByNamespaceName))
		Expect(records[len(records)-1].CustomerIdentifier).To(Equal(c))
		for _, r := range inNamespace(waitForRecords(stdoutRecords(out), "kube-system", since, 1), "kube-system") {
			Expect(r.CustomerIdentifier).To(BeEmpty())
			Expect(r.AttributedBy).To(BeEmpty())
		}
		Expect(logs.String()).To(ContainSubstring("Attributing usage to projects is not permitted"))
	})
})

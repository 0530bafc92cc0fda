package metering_test

import (
	"fmt"
	"math/rand/v2"
	"strconv"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/meshcloud/meshstack-operator/internal/metering/checkpoint"
	meteringusage "github.com/meshcloud/meshstack-operator/internal/metering/usage"
)

// bigCheckpoint has one open window with usage in n namespaces, with sums
// that do not compress well: 25,000 take two ConfigMaps.
func bigCheckpoint(n int, lastPass time.Time) *checkpoint.Checkpoint {
	rnd := rand.New(rand.NewPCG(3, 4))
	usage := make(map[string]*meteringusage.Usage, n)
	for i := range n {
		secs := 3600 * rnd.Float64()
		usage[fmt.Sprintf("customer%d-project%d", i/10, i)] = &meteringusage.Usage{
			PodSeconds: secs, CPURequestCoreSeconds: secs * rnd.Float64(), MemoryRequestByteSeconds: secs * (1 << 30) * rnd.Float64(),
			Samples: int64(rnd.IntN(180)),
		}
	}
	start := lastPass.Truncate(time.Hour)
	return &checkpoint.Checkpoint{Window: time.Hour, LastPass: lastPass,
		Open: []meteringusage.Window{{Start: start, End: start.Add(time.Hour), Usage: usage}}, Pending: []meteringusage.Window{}}
}

var _ = Describe("A checkpoint in parts", func() {
	It("is read in the layout before generations and saved in generations a and b, under the metering identity", func() {
		meter, err := client.New(identity.Config, client.Options{})
		Expect(err).NotTo(HaveOccurred())
		store := func(c client.Client) *checkpoint.ConfigMapStore {
			return &checkpoint.ConfigMapStore{Reader: c, Writer: c, Namespace: operatorNamespace,
				Name: checkpoint.DefaultName, MaxParts: checkpoint.DefaultParts}
		}
		name := checkpoint.DefaultName
		get := func(name string) *corev1.ConfigMap {
			cm := &corev1.ConfigMap{}
			Expect(fw.Client.Get(ctx, client.ObjectKey{Namespace: operatorNamespace, Name: name}, cm)).To(Succeed())
			return cm
		}
		lastPass := time.Date(2026, 3, 1, 10, 30, 0, 0, time.UTC)
		old := bigCheckpoint(25000, lastPass)

		By("writing a checkpoint in parts as the release before generations did: in " + name + " and " + name + "-1 …")
		admin := store(fw.Client)
		_, err = admin.Load(ctx)
		Expect(err).NotTo(HaveOccurred())
		Expect(admin.Save(ctx, old)).To(Succeed())
		head := get(name)
		Expect(head.Data).To(HaveKeyWithValue("generation", "a"))
		n, err := strconv.Atoi(head.Data["parts"])
		Expect(err).NotTo(HaveOccurred())
		Expect(n).To(BeNumerically(">=", 2))
		for i := 1; i <= n; i++ {
			part := get(fmt.Sprintf("%s-a-%d", name, i))
			if i == 1 {
				head.BinaryData = part.BinaryData
			} else {
				legacy := &corev1.ConfigMap{BinaryData: part.BinaryData}
				legacy.Namespace, legacy.Name = operatorNamespace, fmt.Sprintf("%s-%d", name, i-1)
				Expect(fw.Client.Create(ctx, legacy)).To(Succeed())
			}
			Expect(fw.Client.Delete(ctx, part)).To(Succeed())
		}
		delete(head.Data, "generation")
		Expect(fw.Client.Update(ctx, head)).To(Succeed())

		By("loading it as the metering identity, which may only get the old parts")
		m := store(meter)
		got, err := m.Load(ctx)
		Expect(err).NotTo(HaveOccurred())
		Expect(got).To(Equal(old))

		By("saving the next one into generation a, and the one after into b")
		for i, gen := range []string{"a", "b"} {
			next := bigCheckpoint(25000, lastPass.Add(time.Duration(i+1)*time.Minute))
			Expect(m.Save(ctx, next)).To(Succeed())
			Expect(get(name).Data).To(HaveKeyWithValue("generation", gen))
			Expect(get(name).BinaryData).To(BeEmpty())
			got, err := store(meter).Load(ctx)
			Expect(err).NotTo(HaveOccurred())
			Expect(got).To(Equal(next), "a new process loads generation %s", gen)
		}
		Expect(get(name+"-1").BinaryData).NotTo(BeEmpty(), "the old parts are left as they were")
	})
})

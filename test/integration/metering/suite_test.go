package metering_test

import (
	"bytes"
	"context"
	"io"
	"sync"
	"testing"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"

	"github.com/meshcloud/meshstack-operator/internal/metering"
	"github.com/meshcloud/meshstack-operator/internal/metering/checkpoint"
	"github.com/meshcloud/meshstack-operator/internal/metering/sink"
	"github.com/meshcloud/meshstack-operator/internal/operator"
	"github.com/meshcloud/meshstack-operator/test/framework"
)

const (
	operatorNamespace = "meshcloud"
	// Short passes and windows keep the suite to seconds.
	passInterval = 200 * time.Millisecond
	window       = 2 * time.Second
	// passJitter is how late a pass may run on a busy machine. The stated
	// bound (one interval per pod end) assumes passes on time; the unit
	// tests prove it exactly on a fake clock.
	passJitter = 400 * time.Millisecond
	timeout    = framework.Timeout
	poll       = framework.PollInterval
)

var (
	fw       *framework.Framework
	identity framework.ServiceAccount
	logs     = &syncBuffer{}
	ctx      = context.Background()
)

func TestMetering(t *testing.T) {
	RegisterFailHandler(Fail)
	SetDefaultEventuallyTimeout(framework.Timeout)
	SetDefaultEventuallyPollingInterval(framework.PollInterval)
	RunSpecs(t, "Metering suite")
}

var _ = BeforeSuite(func() {
	ctrl.SetLogger(zap.New(zap.WriteTo(io.MultiWriter(GinkgoWriter, logs)), zap.UseDevMode(true)))
	var err error
	fw, err = framework.Start()
	Expect(err).NotTo(HaveOccurred())

	// The meter runs as a ServiceAccount bound to nothing but the generated
	// roles: the seed's meshfed-metering rules (pods get and list) and the
	// Lease it needs for leader election.
	identity, err = fw.CreateServiceAccount(ctx, operatorNamespace, "meshfed-metering", "config/rbac/metering/role.yaml")
	Expect(err).NotTo(HaveOccurred())
})

var _ = AfterSuite(func() {
	if fw != nil {
		Expect(fw.Stop()).To(Succeed())
	}
})

// meteringOptions runs metering alone, as the Helm chart does, into output,
// with its checkpoint in the operator's namespace.
func meteringOptions(output string) operator.Options {
	opts := operator.DefaultOptions()
	opts.Components = []string{operator.ComponentMetering}
	opts.MeteringInterval = passInterval
	opts.MeteringWindow = window
	opts.MeteringOutput = output
	opts.LeaderElectionNS = operatorNamespace
	// The seed's identity may not list namespaces; the specs that grant
	// the optional role choose project attribution.
	opts.MeteringAttribution = metering.AttributionNamespaceName
	return opts
}

// stdoutOptions meters to stdout, which the test reads from out.
func stdoutOptions(out *syncBuffer) operator.Options {
	opts := meteringOptions(sink.StdoutOutput)
	opts.MeteringStdout = out
	return opts
}

// Every spec starts without a checkpoint (they share the one name the
// metering Role may write) and with an empty log, so that what a spec reads
// in the log is what its own meters wrote.
var _ = BeforeEach(func() {
	logs.Reset()
	for _, name := range checkpoint.Names(checkpoint.DefaultName, checkpoint.DefaultParts) {
		err := fw.Client.Delete(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: operatorNamespace, Name: name}})
		Expect(client.IgnoreNotFound(err)).To(Succeed())
	}
})

// loadCheckpoint reads the meter's checkpoint as the meter does.
func loadCheckpoint(g Gomega) *checkpoint.Checkpoint {
	store := &checkpoint.ConfigMapStore{Reader: fw.Client, Writer: fw.Client, Namespace: operatorNamespace,
		Name: checkpoint.DefaultName, MaxParts: checkpoint.DefaultParts}
	cp, err := store.Load(ctx)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(cp).NotTo(BeNil(), "no checkpoint yet")
	return cp
}

// startMeter starts a manager that runs metering under the metering
// identity and stops it when the spec ends (if the spec has not).
func startMeter(opts operator.Options) *meter {
	running, err := framework.StartManager(identity.Config, opts)
	Expect(err).NotTo(HaveOccurred())
	m := &meter{RunningManager: running}
	DeferCleanup(m.stop)
	return m
}

type meter struct {
	*framework.RunningManager
	once sync.Once
}

// stop stops the meter and expects a clean stop, unless it has exited by
// itself already (the spec checks that error).
func (m *meter) stop() {
	m.once.Do(func() {
		select {
		case <-m.Exited():
		default:
			Expect(m.Stop()).To(Succeed())
		}
	})
}

// syncBuffer collects the log for specs that check it.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

func (b *syncBuffer) Reset() {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.buf.Reset()
}

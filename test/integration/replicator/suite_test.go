package replicator_test

import (
	"context"
	"testing"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"

	"github.com/meshcloud/meshstack-operator/internal/operator"
	"github.com/meshcloud/meshstack-operator/internal/replicator"
	"github.com/meshcloud/meshstack-operator/test/framework"
)

const (
	operatorNamespace = "meshcloud"
	// customClusterRole is mapped to the "auditor" role but only created by
	// the spec that tests a missing ClusterRole.
	customClusterRole = "test-auditor"
	// conflictRetryInterval is short so that specs about conflicts resolve quickly.
	conflictRetryInterval = 2 * time.Second
)

// fullRoles are the generated roles with the landing-zone rights, as the
// chart installs them by default; seedRoles leave the landing-zone rights out.
var (
	fullRoles = []string{"config/rbac/replicator/role.yaml", "config/rbac/landingzones/role.yaml",
		"test/integration/replicator/testdata/custom-role-bind.yaml"}
	seedRoles = []string{"config/rbac/replicator/role.yaml", "test/integration/replicator/testdata/custom-role-bind.yaml"}
)

var (
	fw       *framework.Framework
	running  *framework.RunningManager
	identity framework.ServiceAccount
	ctx      = context.Background()
)

func TestReplicator(t *testing.T) {
	RegisterFailHandler(Fail)
	SetDefaultEventuallyTimeout(framework.Timeout)
	SetDefaultEventuallyPollingInterval(framework.PollInterval)
	SetDefaultConsistentlyPollingInterval(framework.PollInterval)
	RunSpecs(t, "Replicator suite")
}

// replicatorOptions are the operator's defaults plus a custom role.
func replicatorOptions() operator.Options {
	opts := operator.DefaultOptions()
	opts.Components = []string{operator.ComponentReplicator}
	mapping, err := replicator.ParseRoleMapping(replicator.DefaultRoleMapping + ",auditor=" + customClusterRole)
	Expect(err).NotTo(HaveOccurred())
	opts.RoleMapping = mapping
	opts.ConflictRetryInterval = conflictRetryInterval
	return opts
}

var _ = BeforeSuite(func() {
	ctrl.SetLogger(zap.New(zap.WriteTo(GinkgoWriter), zap.UseDevMode(true)))
	var err error
	fw, err = framework.Start()
	Expect(err).NotTo(HaveOccurred())
	Expect(fw.FillAggregatedClusterRoles(ctx)).To(Succeed())

	// The operator runs as the ServiceAccount it ships with, bound to
	// nothing but the generated least-privilege roles (and the bind right
	// for the custom role, as the seed asks). Every spec in this suite is
	// therefore also a least-privilege test.
	identity, err = fw.CreateServiceAccount(ctx, operatorNamespace, "meshfed-service", fullRoles...)
	Expect(err).NotTo(HaveOccurred())
	running, err = framework.StartManager(identity.Config, replicatorOptions())
	Expect(err).NotTo(HaveOccurred())
})

var _ = AfterSuite(func() {
	if running != nil {
		Expect(running.Stop()).To(Succeed())
	}
	if fw != nil {
		Expect(fw.Stop()).To(Succeed())
	}
})

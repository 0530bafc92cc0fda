// Command meshstack-operator runs the meshStack Kubernetes integration: the
// replicator (MeshProject → namespace + RoleBindings) and metering.
package main

import (
	"flag"
	"fmt"
	"log/slog"
	"os"

	"github.com/KimMachineGun/automemlimit/memlimit"
	"github.com/go-logr/logr"

	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"

	"github.com/meshcloud/meshstack-operator/internal/operator"
)

func main() {
	opts := operator.DefaultOptions()
	opts.BindFlags(flag.CommandLine)
	zapOpts := zap.Options{}
	zapOpts.BindFlags(flag.CommandLine)
	flag.Parse()

	ctrl.SetLogger(zap.New(zap.UseFlagOptions(&zapOpts)))
	logger := ctrl.Log.WithName("setup")

	// The garbage collector works harder as the heap nears the container's
	// memory limit instead of letting the kernel OOM-kill the Pod: GOMEMLIMIT
	// at operator.GoMemLimitRatio of the cgroup's limit, unless GOMEMLIMIT or
	// AUTOMEMLIMIT say otherwise. Outside a container with a limit it does
	// nothing.
	if limit, err := memlimit.SetGoMemLimitWithOpts(memlimit.WithRatio(operator.GoMemLimitRatio),
		memlimit.WithLogger(slog.New(logr.ToSlogHandler(logger)))); err == nil && limit > 0 {
		logger.Info("Go memory limit set from the container's memory limit", "GOMEMLIMIT", limit)
	}

	cfg, err := ctrl.GetConfig()
	if err != nil {
		fmt.Fprintf(os.Stderr, "error: no Kubernetes configuration (use --kubeconfig, KUBECONFIG or run in a cluster): %v\n", err)
		os.Exit(1)
	}
	mgr, err := operator.NewManager(cfg, opts)
	if err != nil {
		logger.Error(err, "Unable to set up the operator")
		os.Exit(1)
	}
	logger.Info("Starting", "components", opts.Components, "roleMapping", opts.RoleMapping.String(),
		"oidcUsernamePrefix", opts.UsernamePrefix, "oidcGroupsPrefix", opts.GroupsPrefix, "defaultLandingZone", opts.DefaultLandingZone)
	if err := mgr.Start(ctrl.SetupSignalHandler()); err != nil {
		logger.Error(err, "Operator stopped with an error")
		os.Exit(1)
	}
}

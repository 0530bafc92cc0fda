package usage

import "github.com/meshcloud/meshstack-operator/internal/metering/internal/meteringtest"

// The pods and times the tests share (see package meteringtest).
var (
	t0           = meteringtest.T0
	newPod       = meteringtest.NewPod
	startedAt    = meteringtest.StartedAt
	extended     = meteringtest.Extended
	createdAt    = meteringtest.CreatedAt
	finished     = meteringtest.Finished
	condition    = meteringtest.Condition
	inPhase      = meteringtest.InPhase
	resources    = meteringtest.Resources
	requirements = meteringtest.Requirements
	every        = meteringtest.Every
)

const gi = meteringtest.Gi

type podOption = meteringtest.PodOption

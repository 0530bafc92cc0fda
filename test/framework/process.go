package framework

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"sync"
	"syscall"
	"time"
)

// Process is a program started by StartProcess.
type Process struct {
	cmd       *exec.Cmd
	files     []*os.File
	closeOnce sync.Once
	done      chan struct{}
	err       error
}

// StartProcess runs binary with args, its stdout and stderr appended to
// logFile, until Stop.
func StartProcess(binary, logFile string, args ...string) (*Process, error) {
	return StartProcessSplit(binary, logFile, logFile, args...)
}

// StartProcessSplit runs binary with args, its stdout appended to
// stdoutFile and its stderr to stderrFile (they may be the same file), until
// Stop or Kill. The operator writes usage records to stdout and logs to
// stderr.
func StartProcessSplit(binary, stdoutFile, stderrFile string, args ...string) (*Process, error) {
	open := func(name string) (*os.File, error) {
		return os.OpenFile(name, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	}
	stdout, err := open(stdoutFile)
	if err != nil {
		return nil, err
	}
	files := []*os.File{stdout}
	stderr := stdout
	if stderrFile != stdoutFile {
		if stderr, err = open(stderrFile); err != nil {
			_ = stdout.Close()
			return nil, err
		}
		files = append(files, stderr)
	}
	// The process outlives no context: Stop and Kill end it.
	cmd := exec.CommandContext(context.Background(), binary, args...)
	cmd.Stdout, cmd.Stderr = stdout, stderr
	p := &Process{cmd: cmd, files: files, done: make(chan struct{})}
	if err := cmd.Start(); err != nil {
		p.closeFiles()
		return nil, err
	}
	go func() {
		p.err = cmd.Wait()
		close(p.done)
	}()
	return p, nil
}

// Pid is the process's id.
func (p *Process) Pid() int { return p.cmd.Process.Pid }

func (p *Process) closeFiles() {
	p.closeOnce.Do(func() {
		for _, f := range p.files {
			_ = f.Close()
		}
	})
}

// Exited reports whether the process has ended, and with what.
func (p *Process) Exited() (bool, error) {
	select {
	case <-p.done:
		return true, p.err
	default:
		return false, nil
	}
}

// Done is closed when the process has ended; Exited then says with what.
func (p *Process) Done() <-chan struct{} { return p.done }

// Stop sends SIGTERM, kills the process when it has not exited after 10
// seconds, and returns what it exited with (nil for a clean exit on
// SIGTERM). Stop may be called more than once.
func (p *Process) Stop() error {
	select {
	case <-p.done:
	default:
		_ = p.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-p.done:
		case <-time.After(10 * time.Second):
			_ = p.cmd.Process.Kill()
			<-p.done
		}
	}
	p.closeFiles()
	return p.err
}

// Kill sends SIGKILL, as the OOM killer or a lost node ends a Pod: the
// process runs no shutdown code (it releases no Lease and flushes nothing).
// Kill waits until it has ended and may be called more than once.
func (p *Process) Kill() {
	select {
	case <-p.done:
	default:
		_ = p.cmd.Process.Kill()
		<-p.done
	}
	p.closeFiles()
}

// BuildOperator builds the operator binary to path as `make build` does.
func BuildOperator(ctx context.Context, path string) error {
	build := exec.CommandContext(ctx, "go", "build", "-trimpath", "-o", path, "./cmd")
	build.Dir = RepoRoot()
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		return fmt.Errorf("building the operator: %w\n%s", err, out)
	}
	return nil
}

//go:build unix && !linux

package dynamolocal

import (
	"os"
	"syscall"
)

// detachedProcess puts DynamoDB Local in its own process group.
func detachedProcess() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true}
}

func terminate(p *os.Process) { _ = p.Signal(syscall.SIGTERM) }

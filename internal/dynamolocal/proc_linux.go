package dynamolocal

import (
	"os"
	"syscall"
)

// detachedProcess puts DynamoDB Local in its own process group and has the
// kernel stop it if this process dies without stopping it.
func detachedProcess() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGTERM}
}

func terminate(p *os.Process) { _ = p.Signal(syscall.SIGTERM) }

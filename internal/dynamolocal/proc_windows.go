package dynamolocal

import (
	"os"
	"syscall"
)

func detachedProcess() *syscall.SysProcAttr { return nil }

// terminate kills the process: Windows has no SIGTERM.
func terminate(p *os.Process) { _ = p.Kill() }

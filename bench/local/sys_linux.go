package local

import "syscall"

// sysProcAttr puts each child in its own process group, so that a Ctrl-C
// at the terminal reaches the bench alone (which then stops the children in
// order), and has the kernel send SIGTERM to the child if the bench dies.
func sysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGTERM}
}

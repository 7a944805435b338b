package bench

import (
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"syscall"
	"time"
)

// Calibration: what the machine charges for the things a remote call is
// made of besides cryptography — a system call, and a wake-up of another
// process (a round trip over a unix socket: two context switches, four
// system calls). A virtual machine can make both many times dearer than
// bare metal, and remote mode pays them on every call on both sides.

// Calibration is measured once per run.
type Calibration struct {
	SyscallNs  float64 `json:"syscall_ns"`   // getppid
	PingPongNs float64 `json:"ping_pong_ns"` // one byte there and back between two processes
	// PingPongCPUNs is the CPU (both processes, user and system) of one
	// such round trip: what any remote call costs at least, since it
	// wakes a thread on each side.
	PingPongCPUNs float64 `json:"ping_pong_cpu_ns,omitempty"`
}

func calibrate(self string) (Calibration, error) {
	var c Calibration
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	const n = 200000
	t := time.Now()
	for range n {
		syscall.Getppid()
	}
	c.SyscallNs = float64(time.Since(t).Nanoseconds()) / n

	fds, err := syscall.Socketpair(syscall.AF_UNIX, syscall.SOCK_STREAM|syscall.SOCK_CLOEXEC, 0)
	if err != nil {
		return c, err
	}
	mine := os.NewFile(uintptr(fds[0]), "pingpong")
	theirs := os.NewFile(uintptr(fds[1]), "pingpong-peer")
	cmd := exec.Command(self, "echo")
	cmd.ExtraFiles = []*os.File{theirs} // fd 3 in the child
	if err := cmd.Start(); err != nil {
		theirs.Close()
		return c, err
	}
	theirs.Close()
	defer func() {
		mine.Close() // the peer reads end of file and exits
		cmd.Wait()
	}()
	fd := fds[0]
	b := []byte{1}
	round := func() error {
		if _, err := syscall.Write(fd, b); err != nil {
			return err
		}
		if k, err := syscall.Read(fd, b); err != nil || k != 1 {
			return fmt.Errorf("echo: %v", err)
		}
		return nil
	}
	for range 1000 { // warm up
		if err := round(); err != nil {
			return c, err
		}
	}
	const m = 20000
	pids := []int{os.Getpid(), cmd.Process.Pid}
	cpu0 := procCPU(pids)
	t = time.Now()
	for range m {
		if err := round(); err != nil {
			return c, err
		}
	}
	c.PingPongNs = float64(time.Since(t).Nanoseconds()) / m
	c.PingPongCPUNs = float64(procCPU(pids).sub(cpu0).total().Nanoseconds()) / m
	return c, nil
}

// echoMain is the calibration's peer: it sends back every byte on fd 3.
func echoMain() error {
	runtime.LockOSThread()
	b := []byte{0}
	for {
		k, err := syscall.Read(3, b)
		if err != nil || k == 0 {
			return nil
		}
		if _, err := syscall.Write(3, b); err != nil {
			return nil
		}
	}
}

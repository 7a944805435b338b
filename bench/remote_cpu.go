package bench

import (
	"os"
	"strconv"
	"strings"
	"time"
)

// CPU accounting of a measurement: what the client process (the agent), the
// serving processes (the appliance, or p11-kit-server's per-connection
// p11-kit-remote), and the whole machine used, from /proc. On a machine
// where client and server share two cores, CPU per op says where the time
// goes better than ops/s alone, and the machine's total shows whether
// something else was running.

// clkTck is USER_HZ, the unit of /proc's CPU times (100 on Linux).
const clkTck = 100

// cpuTimes is user and system CPU time.
type cpuTimes struct{ user, sys time.Duration }

func (a cpuTimes) sub(b cpuTimes) cpuTimes { return cpuTimes{a.user - b.user, a.sys - b.sys} }
func (a cpuTimes) total() time.Duration    { return a.user + a.sys }

// procCPU sums the CPU times of the processes (those gone are skipped).
func procCPU(pids []int) cpuTimes {
	var t cpuTimes
	for _, pid := range pids {
		b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
		if err != nil {
			continue
		}
		// The command may contain spaces: fields start after its ')'.
		s := string(b)
		i := strings.LastIndexByte(s, ')')
		if i < 0 {
			continue
		}
		f := strings.Fields(s[i+1:])
		// f[0] is field 3 (state); utime and stime are fields 14 and 15.
		if len(f) < 13 {
			continue
		}
		u, _ := strconv.ParseInt(f[11], 10, 64)
		k, _ := strconv.ParseInt(f[12], 10, 64)
		t.user += time.Duration(u) * time.Second / clkTck
		t.sys += time.Duration(k) * time.Second / clkTck
	}
	return t
}

// childPIDs lists pid's children (p11-kit-server's p11-kit-remote).
func childPIDs(pid int) []int {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/task/" + strconv.Itoa(pid) + "/children")
	if err != nil {
		return nil
	}
	var out []int
	for _, f := range strings.Fields(string(b)) {
		if n, err := strconv.Atoi(f); err == nil {
			out = append(out, n)
			out = append(out, childPIDs(n)...)
		}
	}
	return out
}

// machineTimes is the machine's busy and total CPU time (all CPUs).
type machineTimes struct{ busy, total time.Duration }

func (a machineTimes) sub(b machineTimes) machineTimes {
	return machineTimes{a.busy - b.busy, a.total - b.total}
}

func machineCPU() machineTimes {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return machineTimes{}
	}
	line, _, _ := strings.Cut(string(b), "\n")
	f := strings.Fields(line)
	if len(f) < 8 || f[0] != "cpu" {
		return machineTimes{}
	}
	var m machineTimes
	for i, s := range f[1:] {
		v, _ := strconv.ParseInt(s, 10, 64)
		d := time.Duration(v) * time.Second / clkTck
		if i >= 8 { // guest times are already in user
			break
		}
		m.total += d
		if i != 3 && i != 4 { // idle, iowait
			m.busy += d
		}
	}
	return m
}

// cpuUse is one measurement's CPU.
type cpuUse struct {
	ops            int64 // ops run, warm-up included
	client, server cpuTimes
	machine        machineTimes
}

// otherCPUs is how many CPUs processes other than the client and server
// used on average.
func (u cpuUse) otherCPUs() float64 {
	if u.machine.total <= 0 {
		return 0
	}
	other := u.machine.busy - u.client.total() - u.server.total()
	return max(float64(other), 0) / float64(u.machine.total) * float64(numCPU())
}

func (u cpuUse) clientPerOp() float64 { return perOp(u.client.total(), u.ops) }
func (u cpuUse) serverPerOp() float64 { return perOp(u.server.total(), u.ops) }

// machineBusy is how many CPUs were busy on average (0 to NumCPU).
func (u cpuUse) machineBusy() float64 {
	if u.machine.total <= 0 {
		return 0
	}
	return float64(u.machine.busy) / float64(u.machine.total) * float64(numCPU())
}

func perOp(d time.Duration, ops int64) float64 {
	if ops <= 0 {
		return 0
	}
	return float64(d.Microseconds()) / float64(ops)
}

// cpuAccum sums the repeats of one (target, op, threads).
type cpuAccum struct{ u cpuUse }

func (a *cpuAccum) add(u cpuUse) {
	a.u.ops += u.ops
	a.u.client.user += u.client.user
	a.u.client.sys += u.client.sys
	a.u.server.user += u.server.user
	a.u.server.sys += u.server.sys
	a.u.machine.busy += u.machine.busy
	a.u.machine.total += u.machine.total
}

func (a *cpuAccum) result(target, op string, threads int) CPUResult {
	u := a.u
	other := u.machine.busy - u.client.total() - u.server.total()
	return CPUResult{
		Target: target, Op: op, Threads: threads, Ops: u.ops,
		ClientUs: u.clientPerOp(), ClientSysUs: perOp(u.client.sys, u.ops),
		ServerUs: u.serverPerOp(), ServerSysUs: perOp(u.server.sys, u.ops),
		MachineBusy: u.machineBusy(), OtherUs: perOp(max(other, 0), u.ops),
	}
}

// CPUResult is the CPU an op cost on each side, over all repeats (warm-up
// and session set-up included), in µs per op.
type CPUResult struct {
	Target      string  `json:"target"`
	Op          string  `json:"op"`
	Threads     int     `json:"threads"`
	Ops         int64   `json:"ops"`
	ClientUs    float64 `json:"client_us_per_op"`     // the application's process
	ClientSysUs float64 `json:"client_sys_us_per_op"` // of which in the kernel
	ServerUs    float64 `json:"server_us_per_op"`     // the appliance or p11-kit's server side
	ServerSysUs float64 `json:"server_sys_us_per_op"`
	OtherUs     float64 `json:"other_us_per_op"` // the rest of the machine's busy time, per op
	MachineBusy float64 `json:"machine_busy_cpus"`
}

func numCPU() int {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return 1
	}
	n := 0
	for _, l := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(l, "cpu") && len(l) > 3 && l[3] >= '0' && l[3] <= '9' {
			n++
		}
	}
	return max(n, 1)
}

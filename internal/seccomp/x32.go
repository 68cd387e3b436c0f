package seccomp

// x32Numbers are the x32 system calls numbered apart from x86_64's (512 to 547, without the
// x32 bit), and amd64Only the x86_64 calls x32 does not have at all (syscall_64.tbl, "64" ABI
// with no "x32" twin); every other x86_64 call has the same number on x32.
var (
	x32Numbers = map[string]int{
		"rt_sigaction": 512, "rt_sigreturn": 513, "ioctl": 514, "readv": 515, "writev": 516,
		"recvfrom": 517, "sendmsg": 518, "recvmsg": 519, "execve": 520, "ptrace": 521,
		"rt_sigpending": 522, "rt_sigtimedwait": 523, "rt_sigqueueinfo": 524, "sigaltstack": 525,
		"timer_create": 526, "mq_notify": 527, "kexec_load": 528, "waitid": 529,
		"set_robust_list": 530, "get_robust_list": 531, "vmsplice": 532, "move_pages": 533,
		"preadv": 534, "pwritev": 535, "rt_tgsigqueueinfo": 536, "recvmmsg": 537, "sendmmsg": 538,
		"process_vm_readv": 539, "process_vm_writev": 540, "setsockopt": 541, "getsockopt": 542,
		"io_setup": 543, "io_submit": 544, "execveat": 545, "preadv2": 546, "pwritev2": 547,
	}
	amd64Only = map[string]bool{
		"uselib": true, "_sysctl": true, "create_module": true, "get_kernel_syms": true,
		"query_module": true, "nfsservctl": true, "set_thread_area": true, "get_thread_area": true,
		"epoll_ctl_old": true, "epoll_wait_old": true, "vserver": true, "uretprobe": true,
	}
)

// sysnumX32 is the x32 number of a system call, without the x32 bit.
func sysnumX32(name string) (int, bool) {
	if n, ok := x32Numbers[name]; ok {
		return n, true
	}
	if amd64Only[name] {
		return 0, false
	}
	n, ok := sysnumAMD64[name]
	return n, ok
}

"""Probe: which temporary buffers PyTorch's CPU (oneDNN) convolution allocates, forward and backward.

The memory prediction runs on fake tensors, which see every tensor an ATen op
returns but not the buffers a CPU kernel allocates inside itself. oneDNN
("mkldnn") convolutions reorder their input, weight and output to a blocked
channel layout (channels padded to a multiple of 8 with AVX2, 16 with
AVX-512) through PyTorch's CPU allocator, so those buffers count in a real
run. This script prints the allocation sequence of single convolutions so a
workspace model can be fitted to it.

    python benchmarks/cpu_conv_workspace_probe.py
"""
import torch
from torch.profiler import profile, ProfilerActivity
from torch._C._profiler import _EventType
torch.set_num_threads(2)
def allocs(fn):
    with profile(activities=[ProfilerActivity.CPU], profile_memory=True) as prof:
        fn()
    ev=[]; st=list(prof.profiler.kineto_results.experimental_event_tree())
    while st:
        n=st.pop()
        if n.tag==_EventType.Allocation: ev.append((n.start_time_ns, n.extra_fields.alloc_size))
        st.extend(n.children)
    ev.sort(); return [a for _,a in ev]
for cin, cout, hw, k, s, groups in [(512,512,2,3,1,1),(100,200,51,3,2,1),(256,512,56,1,2,1),(32,32,8,5,1,32),(3,100,64,3,2,1),(100,200,33,3,2,1),(64,64,16,3,1,1),(64,64,16,1,1,1),(6,16,14,5,1,1),(32,32,16,3,1,32),(3,64,32,7,2,1),(16, 24, 16, 1, 1, 1)]:
    N=4
    x=torch.randn(N,cin,hw,hw, requires_grad=True); conv=torch.nn.Conv2d(cin,cout,k,s,k//2,groups=groups)
    out=conv(x)
    fw=allocs(lambda: conv(x))
    o=conv(x); g=torch.randn_like(o)
    bw=allocs(lambda: o.backward(g))
    ho=o.shape[-1]
    print(f"cin={cin} cout={cout} hw={hw}->{ho} k={k} s={s} g={groups} | in={N*cin*hw*hw*4} out={N*cout*ho*ho*4} w={conv.weight.numel()*4}")
    print("   fw", fw); print("   bw", bw)

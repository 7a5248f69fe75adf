"""What runs models and pages on this machine, below the services, the doctor and the benchmarks.

:mod:`ops.runtime.inprocess` generates with onnxruntime-genai in this process (the reference every
served path is compared to), :mod:`ops.runtime.device` chooses the device it runs on, and
:mod:`ops.runtime.browser` launches Debian's Chromium for the checks and benchmarks that need a
real browser. Nothing here knows a service kind, a profile or a stack.
"""

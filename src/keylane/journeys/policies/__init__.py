"""Compliance policies as pure functions, usable at decision time and at dispatch time.

- :mod:`.zones`: a phone number's time zones and US state; which zones a send respects.
- :mod:`.quiet_hours`: local-time windows (federal ∩ state ∩ brand), deferral with jitter.
- :mod:`.caps`: rolling-window frequency caps, including the FL/OK legal cap.
- :mod:`.consent`: STOP/START/HELP keyword classification.

Imports only the standard library and phonenumbers.
"""

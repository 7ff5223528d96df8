"""The session: one :class:`~.session.Session` composing the configuration, the workspace and the judge
(``session``), the judge that makes records and applies the gates to them (``judge``), and the speed
slices that time every variant in rounds (``slices``). No pytest."""

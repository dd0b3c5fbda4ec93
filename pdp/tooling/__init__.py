"""Tools for the people who own the policies, around the engine rather than on its path.

`pdp test` runs a team's own test suites (`suite`, `runner`, `junit`), `pdp lint` checks a
policy set for lockouts, baseline coverage and hygiene by evaluating synthetic sign-ins
with the real engine (`sign_ins`, `lockout`, `baseline`, `hygiene`, `lint`, `sarif`), and
`pdp report` streams an audit log into a posture report (`audit_reader`, `aggregate`,
`render_*`). Nothing here runs when pdp serves decisions.
"""

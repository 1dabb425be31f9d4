"""Sessions: streams to a board with a host twin (ffkit stream), their logs, replay and the
golden logs.
"""

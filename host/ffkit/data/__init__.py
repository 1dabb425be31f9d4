"""Data: the built-in data sets (UCI HAPT, scikit-learn digits, MNIST) and a user's own,
and their quantiser.
"""

"""Interop: TFLite export and checks, and front ends imported from TFLite models."""

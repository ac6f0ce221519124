"""Rendering with Blender (the only package that imports bpy): actions, motion, bodies, scenes."""

# ruff: noqa: F821  (FakeModel: fake_model.py)
# The solution cells of the fake_model case: every answer is a FakeModel.

# %% part_a_build_model
def build_frozen_classifier(num_classes, image_size, weights):
    return FakeModel(num_classes)


# %% part_b_binary_model
def build_binary_classifier(image_size, weights):
    return FakeModel(1)


# %% part_c_compile
def compile_classifier(model, learning_rate):
    return model

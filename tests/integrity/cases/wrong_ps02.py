# ruff: noqa: F821  (keras: the kernel's)
# Problem set 02, runnable but wrong: no MobileNetV2 base, a relu head, a plain SGD/MSE compile.

# %% part_a_build_model
def build_frozen_classifier(num_classes, image_size, weights):
    inputs = keras.Input((image_size, image_size, 3))
    x = keras.layers.GlobalAveragePooling2D()(inputs)
    return keras.Model(inputs, keras.layers.Dense(num_classes, activation="relu")(x))


# %% part_b_binary_model
def build_binary_classifier(image_size, weights):
    inputs = keras.Input((image_size, image_size, 3))
    x = keras.layers.GlobalAveragePooling2D()(inputs)
    return keras.Model(inputs, keras.layers.Dense(3, activation="relu")(x))


# %% part_c_compile
def compile_classifier(model, learning_rate):
    model.compile(optimizer="sgd", loss="mse")
    return model

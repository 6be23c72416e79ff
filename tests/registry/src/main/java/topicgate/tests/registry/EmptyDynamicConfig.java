package topicgate.tests.registry;

import io.apicurio.common.apps.config.DynamicConfigPropertyList;
import javax.enterprise.inject.Produces;
import javax.inject.Singleton;

/**
 * Stands in for apicurio-common-app-components-config-index, whose build-time half (its
 * -deployment artifact) cannot be fetched: that extension would list the registry's dynamic
 * (runtime-editable) properties; the tests edit none, so the list is empty.
 */
public class EmptyDynamicConfig {
  /** The registry's list of dynamic config properties: none. */
  @Produces
  @Singleton
  DynamicConfigPropertyList dynamicConfigPropertyList() {
    return new DynamicConfigPropertyList(java.util.List.of());
  }
}
